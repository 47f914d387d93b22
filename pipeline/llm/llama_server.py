"""The embedded model's server: llama.cpp's OpenAI-compatible server, with the CPU's extra buffer types off.

Extra buffer types repack weights for special kernels, AMX among them. CPUs report AMX that many
VMs do not enable, and llama.cpp then dies with an illegal instruction at its first answer (seen on
this project's machines with llama-cpp-python 0.3.36, whose server has no option for it). Off, the
plain kernels of the build serve the tiny model everywhere.

    python -m personagraph.llm.llama_server --model F ...   (the arguments of `python -m llama_cpp.server`)
"""

from __future__ import annotations

import runpy
from typing import Any

import llama_cpp.llama_cpp as bindings

_defaults = bindings.llama_model_default_params


def model_params_without_extra_buffer_types() -> Any:
    """llama.cpp's default model parameters with `use_extra_bufts` off."""
    params = _defaults()
    params.use_extra_bufts = False
    return params


def main() -> None:
    """Run llama.cpp's server (its own command line) with the changed model defaults."""
    bindings.llama_model_default_params = model_params_without_extra_buffer_types
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
