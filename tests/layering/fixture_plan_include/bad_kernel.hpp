// A kernel header breaking the layering rule, for layering.check_finds_a_plan_include.
#pragma once
#include "plan/attention_plan.hpp"
