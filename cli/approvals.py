"""Signing a decision on the command line: ``--key``, or ``--print-message`` then ``--signature-file``.

When the policy verifies approvers (``approvals.identity: verified``), approve, retry, resume,
mode auto and close-breaker carry a proof: this module's options say how to make it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.common import DurationType
from cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from zerotouch.approval_proofs import ApprovalProof, Wanted

R = TypeVar("R")

SSH_KEYGEN_HINT = "ssh-keygen -Y sign -n zerotouch-approval -f ~/.ssh/id_ed25519 FILE"


_PROOF_OPTIONS = (
    click.option("--key", type=click.Path(dir_okay=False),
                 help="sign with this OpenSSH Ed25519 private key (e.g. ~/.ssh/id_ed25519); needed when the "
                      "policy verifies approvers"),
    click.option("--passphrase-env", metavar="VAR", help="read the key's passphrase from this variable"),
    click.option("--print-message", is_flag=True,
                 help=f"print the message to sign and stop; sign it with `{SSH_KEYGEN_HINT}`"),
    click.option("--signature-file", type=click.Path(dir_okay=False),
                 help="the signature `ssh-keygen -Y sign` made of the printed message (FILE.sig)"),
    click.option("--message-file", type=click.Path(dir_okay=False),
                 help="the message that signature covers (default: the signature file without .sig)"),
    click.option("--valid-for", type=DurationType(), default="15m", show_default=True,
                 help="how long a printed or signed proof stays valid (at most 1h)"),
)


@dataclass(frozen=True)
class ProofOptions:
    key: str | None = None
    passphrase_env: str | None = None
    print_message: bool = False
    signature_file: str | None = None
    message_file: str | None = None
    valid_for: timedelta = timedelta(minutes=15)

    @property
    def requested(self) -> bool:
        """Whether the command should look up the request and prove (or print) anything."""
        return bool(self.key or self.print_message or self.signature_file)


def proof_options(command: Callable[..., R]) -> Callable[..., R]:
    """The signing options; the command receives them as ``proof`` (a `ProofOptions`)."""

    @functools.wraps(command)
    def with_proof(*args: Any, key: str | None, passphrase_env: str | None, print_message: bool,
                   signature_file: str | None, message_file: str | None, valid_for: timedelta, **kwargs: Any) -> R:
        proof = ProofOptions(key, passphrase_env, print_message, signature_file, message_file, valid_for)
        return command(*args, proof=proof, **kwargs)

    decorated: Callable[..., R] = with_proof
    for option in reversed(_PROOF_OPTIONS):
        decorated = option(decorated)
    return decorated


def prove(options: ProofOptions, wanted: Wanted) -> ApprovalProof | None:
    """The proof for `wanted`, or None without signing options; prints the message and stops for --print-message."""
    from zerotouch.approval_proofs import MAX_VALIDITY
    from zerotouch.approval_signing import SigningError, load_signing_key, new_message, proof_from_files, sign

    chosen = [name for name, given in (("--key", options.key), ("--print-message", options.print_message),
                                       ("--signature-file", options.signature_file)) if given]
    if len(chosen) > 1:
        raise UsageError(f"choose one of {', '.join(chosen)}")
    if options.valid_for > MAX_VALIDITY or options.valid_for <= timedelta(0):
        raise UsageError("--valid-for must be more than 0 and at most 1h")
    try:
        if options.print_message:
            click.echo(new_message(wanted, valid_for=options.valid_for), nl=False)
            raise click.exceptions.Exit(0)
        if options.signature_file:
            return proof_from_files(options.signature_file, options.message_file)
        if options.key:
            passphrase = os.environ.get(options.passphrase_env) if options.passphrase_env else None
            if options.passphrase_env and passphrase is None:
                raise UsageError(f"${options.passphrase_env} is not set")
            return sign(new_message(wanted, valid_for=options.valid_for),
                        load_signing_key(options.key, passphrase))
    except SigningError as error:
        raise CommandError(str(error)) from None
    return None
