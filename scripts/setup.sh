# Sourced by scripts/test.sh and scripts/run.sh: creates the virtualenv and installs the
# project with its extras. Idempotent; a second run only checks.
VENV=${P2PENERGY_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q -e ".[test]"
export PATH="$PWD/$VENV/bin:$PATH"
