#!/usr/bin/env python3
"""Checks that a shared libsimdattn exports its public API and nothing else.

    check_exports.py <libsimdattn.so> <include dir holding simdattn/>

The API is read from the public headers: every function declared with SIMDATTN_API, the C ones
in simdattn.h by name, the C++ ones by their namespace-qualified name (any overload). Every
symbol of `nm -D --defined-only` must be one of them (no xsimd, no simdattn::detail, no std::
template instantiations), and every one of them must be exported. Exit status 0 when both hold.
"""
import pathlib
import re
import subprocess
import sys

# The name may be parenthesised, as a function that a macro of the same name wraps is declared:
# `SIMDATTN_API void (name)(...)`.
DECLARATION = re.compile(
    r"SIMDATTN_API\b[^;{]*?(?:\(\s*(\w+)\s*\)|\b(\w+))\s*\((?!\s*\w+\s*\)\s*\()", re.S)
NAMESPACE = re.compile(r"^\s*namespace\s+([\w:]+)\s*\{", re.M)


def declared_api(include_dir):
    """(C names, C++ qualified names) of the functions the public headers declare SIMDATTN_API."""
    c_names, cpp_names = set(), set()
    headers = sorted((pathlib.Path(include_dir) / "simdattn").glob("*.h*"))
    for header in headers:
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", header.read_text(), flags=re.S)
        text = re.sub(r"^\s*#.*$", "", text, flags=re.M)  # the macro's own #define lines
        namespaces = [(m.start(), m.group(1)) for m in NAMESPACE.finditer(text)]
        for match in DECLARATION.finditer(text):
            name = match.group(1) or match.group(2)
            if header.suffix == ".h":
                c_names.add(name)
                continue
            # The innermost namespace opened before the declaration (our headers open one each).
            enclosing = [name for start, name in namespaces if start < match.start()]
            if not enclosing:
                raise SystemExit(f"{header}: {name} is declared outside any namespace")
            cpp_names.add(f"{enclosing[-1]}::{name}")
    if not c_names or not cpp_names:
        raise SystemExit(f"no SIMDATTN_API declarations found under {include_dir}")
    return c_names, cpp_names


def exported_symbols(library):
    """[(raw name, demangled name)] of the symbols the library defines in its dynamic table."""
    listing = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                             capture_output=True, text=True).stdout
    raw = [line.split()[-1] for line in listing.splitlines() if line.strip()]
    demangled = subprocess.run(["c++filt"], input="\n".join(raw), check=True, capture_output=True,
                               text=True).stdout.splitlines()
    return list(zip(raw, demangled))


def function_name(demangled):
    """'simdattn::attention(simdattn::BasicTensorView<...>, ...)' -> 'simdattn::attention'."""
    return demangled.split("(", 1)[0].strip()


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    library, include_dir = sys.argv[1], sys.argv[2]
    c_names, cpp_names = declared_api(include_dir)
    exported = exported_symbols(library)

    unexpected = [(raw, name) for raw, name in exported
                  if raw not in c_names and function_name(name) not in cpp_names]
    found = {raw for raw, _ in exported} | {function_name(name) for _, name in exported}
    missing = sorted((c_names | cpp_names) - found)

    print(f"{library}: {len(exported)} exported symbols; the headers declare "
          f"{len(c_names)} C and {len(cpp_names)} C++ functions")
    for raw, name in exported:
        print(f"  {'UNEXPECTED ' if (raw, name) in unexpected else ''}{name}")
    for name in missing:
        print(f"  MISSING {name}")
    if unexpected or missing:
        print(f"FAILED: {len(unexpected)} unexpected, {len(missing)} missing")
        return 1
    print("exports ok: the public API and nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main())
