"""Helpers the test folders share: raw HTTP on sockets in both roles (``wire``), the emulator
with this process's runtime (``emulated``), a scripted Runtime API (``fake_api``) and the
``serve`` command as a subprocess (``serve_process``)."""
