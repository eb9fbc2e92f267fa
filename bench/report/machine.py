"""What the report says about the host: CPU model, cores, compiler and date.

The ISA, thread count and simdattn version come from the bench's own JSON context (the code that
ran says what it was); this module adds what only the operating system and the build tree know."""
import datetime
import os
import platform
import re
import subprocess
from pathlib import Path


def cpu_model():
    """The CPU's marketing name from /proc/cpuinfo, or platform's guess elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_counts():
    """(physical cores, logical processors); a count that cannot be read is None."""
    logical = os.cpu_count()
    cores_per_package = {}
    package = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    package = value.strip()
                elif key == "cpu cores":
                    # Every processor of a package repeats its core count; count each package once.
                    cores_per_package[package] = int(value.strip())
    except (OSError, ValueError):
        pass
    physical = sum(cores_per_package.values()) if cores_per_package else None
    return physical, logical


def _cache_entry(cache_text, name):
    match = re.search(r"^" + re.escape(name) + r":[A-Z]+=(.*)$", cache_text, re.MULTILINE)
    return match.group(1).strip() if match else None


def compiler_of_build(bench_path):
    """The C++ compiler that built bench_path, from its CMake build tree, e.g. 'GNU 12.2.0
    (/usr/bin/c++), Release build'; None when the binary does not sit in a CMake build tree."""
    for directory in Path(bench_path).resolve().parents:
        cache = directory / "CMakeCache.txt"
        if not cache.is_file():
            continue
        text = cache.read_text(encoding="utf-8", errors="replace")
        path = _cache_entry(text, "CMAKE_CXX_COMPILER") or "?"
        build_type = _cache_entry(text, "CMAKE_BUILD_TYPE") or "default"
        identity = None
        # CMake records the compiler's id and version per CMake version, under CMakeFiles/<ver>/.
        for description in sorted(directory.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")):
            found = dict(re.findall(r'set\(CMAKE_CXX_COMPILER_(ID|VERSION) "([^"]*)"\)',
                                    description.read_text(encoding="utf-8", errors="replace")))
            if found.get("ID"):
                identity = f"{found['ID']} {found.get('VERSION', '')}".strip()
        return f"{identity or 'unknown compiler'} ({path}), {build_type} build"
    return None


def compiler_on_path():
    """The first line of `c++ --version`, or None when there is no c++."""
    try:
        done = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else None


def describe_compiler(bench_path):
    """The compiler line of the report, saying where the answer came from."""
    from_build = compiler_of_build(bench_path)
    if from_build:
        return from_build
    on_path = compiler_on_path()
    if on_path:
        return f"{on_path} (c++ on PATH; the bench's build tree was not found)"
    return "unknown (no CMake build tree beside the bench, no c++ on PATH)"


def now_utc():
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def describe_host(bench_path):
    """Everything machine.py knows, as a dict stored with the run (so a re-render keeps it)."""
    physical, logical = cpu_counts()
    return {
        "cpu_model": cpu_model(),
        "physical_cores": physical,
        "logical_processors": logical,
        "compiler": describe_compiler(bench_path),
        "os": f"{platform.system()} {platform.release()}",
        "date": now_utc(),
    }
