# cffi has no pyproject hook: its build step is declared here and nowhere else.
from setuptools import setup

setup(cffi_modules=["csrc/ffi_build.py:ffibuilder"])
