"""``p2penergy operator``: the settlement contract's operator key: create a keystore, show, rotate.

Also the two options every command that writes to a chain takes (``--operator-keystore``,
``--operator-password-file``) and how they become a key (:func:`load_operator`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from p2penergy.cli.output import fail
from p2penergy.ledger.keys import (
    HOW_TO_GIVE_OPERATOR_KEY,
    KEYSTORE_SCRYPT_N,
    OPERATOR_ID,
    OPERATOR_KEY_ENV,
    OPERATOR_PASSWORD_ENV,
    SECP256K1_N,
    Key,
    OperatorKeyError,
    describe_operator,
    keystore_address,
    operator_key,
    read_password,
    require_real_operator,
    write_keystore,
)

app = typer.Typer(no_args_is_help=True, help="The settlement contract's operator key: create, show, rotate.")

KeystoreOption = Annotated[Path | None, typer.Option(
    "--operator-keystore", envvar="P2PENERGY_OPERATOR_KEYSTORE",
    help=f"The contract operator's encrypted Ethereum JSON keystore (needed with --chain-url; or give the key "
         f"in ${OPERATOR_KEY_ENV}).")]
PasswordFileOption = Annotated[Path | None, typer.Option(
    "--operator-password-file", envvar="P2PENERGY_OPERATOR_PASSWORD_FILE",
    help=f"File whose first line is the keystore's password (default: ${OPERATOR_PASSWORD_ENV}).")]


def load_operator(keystore: Path | None, password_file: Path | None, chain_url: str | None) -> Key | None:
    """The operator's own key from the options or the environment; with ``chain_url`` one is required.

    None on the embedded chain when none is given (the run then uses the demonstration key).
    Fails (exit 2) naming the option.
    """
    try:
        key = operator_key(keystore, password_file)
        if chain_url:
            require_real_operator(key, chain_url)
    except OperatorKeyError as exc:
        raise fail(str(exc)) from exc
    return key


def _chain_and_contract(chain_url: str, contract: str | None, db: str | None, key: Key, read_only: bool) -> Any:
    from p2penergy.ledger.chain import Chain, ChainError

    if (contract is None) == (db is None):
        raise fail("--contract / --db: give one: the contract's address, or the journal that names it")
    if db is not None:
        from p2penergy.ledger.journal import Journal

        try:
            journal = Journal(db)
            stored = journal.get_meta("contract")
            journal.close()
        except Exception as exc:
            raise fail(f"--db: cannot read the journal at {db} ({exc})") from exc
        if stored is None:
            raise fail(f"--db: {db} holds no ledger metadata (no contract address)")
        contract = json.loads(stored)
    assert contract is not None
    try:
        chain = Chain.connect(chain_url, key, read_only=read_only)
        chain.attach(contract)
    except ChainError as exc:
        raise fail(str(exc)) from exc
    return chain


@app.command("new-keystore")
def new_keystore(
    file: Annotated[Path, typer.Argument(help="Keystore file to create (never overwritten; mode 0600).")],
    password_file: Annotated[Path | None, typer.Option(
        help=f"File whose first line is the password (default: ${OPERATOR_PASSWORD_ENV}, else asked).")] = None,
    scrypt_n: Annotated[int, typer.Option(hidden=True, help="scrypt cost; lower only in tests.")] = KEYSTORE_SCRYPT_N,
) -> None:
    """Create a new operator key (from the operating system's randomness) in an encrypted keystore."""
    import secrets

    try:
        password = read_password(password_file, option="--password-file")
    except OperatorKeyError as exc:
        if password_file is not None:
            raise fail(str(exc)) from exc
        password = typer.prompt("keystore password", hide_input=True, confirmation_prompt=True)
    secret = 0
    while not 0 < secret < SECP256K1_N:
        secret = int.from_bytes(secrets.token_bytes(32), "big")
    key = Key.from_hex(OPERATOR_ID, secret.to_bytes(32, "big").hex(), "keystore")
    try:
        write_keystore(file, password, key, scrypt_n)
    except OperatorKeyError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{key.address}  written to {file}")


@app.command("show")
def show(
    chain_url: Annotated[str, typer.Option(help="JSON-RPC node holding the contract.")],
    contract: Annotated[str | None, typer.Option(help="Settlement contract address.")] = None,
    db: Annotated[str | None, typer.Option(help="Journal URL that names the contract (instead of --contract).")] = None,
) -> None:
    """Print the contract's current operator."""
    chain = _chain_and_contract(chain_url, contract, db, Key(OPERATOR_ID, b"", "0x" + "00" * 20), read_only=True)
    typer.echo(f"contract {chain.address} on {chain_url} (chain {chain.chain_id}): operator {chain.operator_of()}")


@app.command("rotate")
def rotate(
    chain_url: Annotated[str, typer.Option(help="JSON-RPC node holding the contract.")],
    keystore: KeystoreOption = None,
    password_file: PasswordFileOption = None,
    new_keystore: Annotated[Path | None, typer.Option(help="Keystore of the new operator (its address is read; "
                                                           "no password needed).")] = None,
    new_address: Annotated[str | None, typer.Option(help="The new operator's address (instead of "
                                                         "--new-keystore).")] = None,
    contract: Annotated[str | None, typer.Option(help="Settlement contract address.")] = None,
    db: Annotated[str | None, typer.Option(help="Journal URL that names the contract (instead of --contract).")] = None,
) -> None:
    """Hand the contract to a new operator key (signed by the current one). Stop the service first;
    restart it with the new key (--operator-keystore NEW)."""
    from p2penergy.ledger.chain import ChainError

    if (new_keystore is None) == (new_address is None):
        raise fail("--new-keystore / --new-address: give one: the new operator")
    if new_keystore is not None:
        try:
            new = keystore_address(new_keystore)
        except OperatorKeyError as exc:
            raise fail(str(exc)) from exc
    else:
        new = str(new_address)
    key = load_operator(keystore, password_file, chain_url)
    if key is None:
        raise fail(f"--operator-keystore: the current operator's key is needed: {HOW_TO_GIVE_OPERATOR_KEY}")
    chain = _chain_and_contract(chain_url, contract, db, key, read_only=False)
    try:
        if chain.operator_of().lower() == new.lower():
            raise fail(f"--new-keystore / --new-address: {new} already operates {chain.address}")
        event = chain.transfer_operator(new)
        now = chain.operator_of()
    except ChainError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"contract {chain.address}: operator {event['previous']} -> {now} (transaction {event['tx_hash']})")
    typer.echo(f"the old key ({describe_operator(key)}) can no longer write; restart the service with the new key")
