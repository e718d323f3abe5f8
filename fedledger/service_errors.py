"""The one place that turns a failure to talk to a service (chain RPC, IPFS API) into a one-line `UserError`.

Bad URLs, refused connections, an HTTP server that is not an Ethereum node, a JSON-RPC error, and a contract
that is not a FederationLedger each get a line naming the URL or address and a hint saying which option to fix.
Command modules wrap their service calls in `service_errors(...)`; the CLI root runs `as_user_error` on
anything that still escapes, so a missed call site still prints one line. Heavy libraries (web3, requests)
are never imported here: an exception can only be one of theirs if its module is already loaded.
"""
from __future__ import annotations

import json
import sys
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from fedledger.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, UserError

RPC_HINT = "is the node running? pass --rpc URL (or set FEDLEDGER_RPC); the devnet's is http://127.0.0.1:8545"
IPFS_HINT = "is the IPFS node running? start one with `fedledger devnet up`, or pass --ipfs URL (the devnet's is \
http://127.0.0.1:5001)"
#: service kind -> (what it is called in a message, the hint when it cannot be reached or is the wrong server)
SERVICES = {"rpc": ("the Ethereum JSON-RPC", RPC_HINT), "ipfs": ("the IPFS API", IPFS_HINT)}
URL_HINT = "pass an http(s) URL with a host and a port, e.g. http://127.0.0.1:8545"


def check_url(value: str, option: str, *, schemes: tuple[str, ...] = ("http", "https"), hint: str = URL_HINT) -> str:
    """`value` if it is a usable `scheme://host[:port]` URL; a one-line usage error naming `option` otherwise."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
    except ValueError as exc:
        raise UserError(f"{option} {value!r} is not a URL ({exc})", hint=hint, exit_code=EXIT_BAD_INPUT) from None
    if parts.scheme not in schemes or not parts.hostname:
        raise UserError(f"{option} {value!r} is not an {'/'.join(schemes)} URL", hint=hint, exit_code=EXIT_BAD_INPUT)
    return value


def check_ipfs(value: str, option: str = "--ipfs") -> str:
    """`value` if it is an http(s) URL or a multiaddr of an IPFS API; a one-line usage error otherwise."""
    hint = "pass http://127.0.0.1:5001 or /ip4/127.0.0.1/tcp/5001/http"
    if value.startswith("/"):
        import multiaddr

        try:
            multiaddr.Multiaddr(value)
        except (multiaddr.exceptions.Error, ValueError) as exc:
            raise UserError(f"{option} {value!r} is not a multiaddr ({_first_line(exc, 80)})", hint=hint,
                            exit_code=EXIT_BAD_INPUT) from None
        return value
    return check_url(value, option, hint=hint)


def _loaded(module: str, name: str) -> type | None:
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def _isinstance(exc: BaseException, module: str, *names: str) -> bool:
    return any(cls is not None and isinstance(exc, cls) for cls in (_loaded(module, n) for n in names))


def _reason(exc: BaseException) -> str:
    """A short cause: the innermost OS error text (`Connection refused`) or the exception's class name."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    if isinstance(seen, OSError) and seen.strerror:
        return seen.strerror
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, OSError) and exc.reason.strerror:
        return exc.reason.strerror
    return type(exc).__name__


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None) if response is not None else getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def as_user_error(exc: BaseException, *, url: str | None = None, contract: str | None = None,
                  service: str = "rpc", expected: str | None = None, option: str | None = None) -> UserError | None:
    """The one-line error for a known service failure, or None when `exc` is not one (a bug: let it surface).

    `contract` (given with `option`, e.g. "--contract", and `expected`, e.g. "FederationLedger") names the
    address a failed contract call went to; without them the line and hint stay generic."""
    if isinstance(exc, UserError):
        return exc
    if service != "ipfs" and (_isinstance(exc, "ledger_tools.blobstore", "BlobStoreError")
                              or type(exc).__module__.startswith("ipfshttpclient")):
        service, url = "ipfs", None  # an IPFS failure inside a block that named the chain's URL
    name, hint = SERVICES[service]
    where = f" at {url}" if url else ""
    if _isinstance(exc, "requests.exceptions", "MissingSchema", "InvalidSchema", "InvalidURL", "URLRequired"):
        return UserError(f"{url or 'the URL'} is not a usable URL for {name}: {_first_line(exc)}",
                         hint=URL_HINT, exit_code=EXIT_BAD_INPUT)
    if (_isinstance(exc, "requests.exceptions", "HTTPError") or isinstance(exc, urllib.error.HTTPError)
            or _isinstance(exc, "web3.exceptions", "BadResponseFormat")
            or _isinstance(exc, "ipfshttpclient.exceptions", "StatusError", "ProtocolError", "DecodingError")
            or (isinstance(exc, json.JSONDecodeError) and str(exc).startswith("Could not decode"))):  # web3's
        status = _status(exc)
        got = f"answered HTTP {status}: it is not {name}" if status else f"answered, but not as {name} does"
        return UserError(f"the server{where} {got}", hint=hint, exit_code=EXIT_UNREACHABLE)
    if _isinstance(exc, "ledger_tools.blobstore", "BlobStoreUnavailable"):  # its cause is urllib3's many lines
        reason = type(exc.__cause__).__name__ if exc.__cause__ is not None else "no answer"
        return UserError(f"cannot reach {name}{where} ({reason})", hint=hint, exit_code=EXIT_UNREACHABLE)
    if (_isinstance(exc, "requests.exceptions", "ConnectionError", "Timeout")
            or _isinstance(exc, "web3.exceptions", "ProviderConnectionError", "TimeExhausted")
            or _isinstance(exc, "ipfshttpclient.exceptions", "CommunicationError")
            or isinstance(exc, urllib.error.URLError | ConnectionError | TimeoutError)):
        return UserError(f"cannot reach {name}{where} ({_reason(exc)})", hint=hint, exit_code=EXIT_UNREACHABLE)
    if _isinstance(exc, "ledger_tools.chain.errors", "LedgerUnavailable"):
        absent = "no contract" in str(exc)
        return UserError(str(exc), hint=_contract_hint(option, expected) if absent else RPC_HINT,
                         exit_code=EXIT_BAD_INPUT if absent else EXIT_UNREACHABLE)
    if _isinstance(exc, "web3.exceptions", "ContractLogicError", "BadFunctionCallOutput", "Web3RPCError",
                   "MismatchedABI", "ABIFunctionNotFound"):
        what = f"{contract} on {url}" if contract and url else contract or "the contract called"
        return UserError(f"{what} does not answer like a {expected or 'contract of this federation'} "
                         f"({type(exc).__name__}: {_first_line(exc, 80)})", hint=_contract_hint(option, expected),
                         exit_code=EXIT_BAD_INPUT)
    return None


def _contract_hint(option: str | None, expected: str | None) -> str:
    if option is None or expected is None:
        return "check the contract address (--contract: a FederationLedger; --governor: its FederationGovernor)"
    return f"check {option}: it must be a {expected} deployed on this chain"


def _first_line(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


@contextmanager
def service_errors(url: str | None = None, *, contract: str | None = None, service: str = "rpc",
                   expected: str = "FederationLedger", option: str = "--contract") -> Iterator[None]:
    """Run a block that talks to `url` (`service`: "rpc" or "ipfs") and, when given, the contract at `contract`
    (an `expected` contract, set by `option`); its known failures leave as one UserError line."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified by as_user_error; anything it does not know is re-raised
        err = as_user_error(exc, url=url, contract=contract, service=service, expected=expected, option=option)
        if err is None:
            raise
        raise err from exc
