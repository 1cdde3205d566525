"""``otelplug alerts list|rules|ack ID|resolve ID|silence LABEL=VALUE...``: the
alerts of a running sidecar, through its ``alerts`` extension's loopback
control endpoint (``--endpoint``, default 127.0.0.1:13141).

An alert ID may be shortened to any unique prefix, as ``list`` shows it.
"""
from __future__ import annotations

import getpass
import json
import sys
import time
import urllib.error
import urllib.request

DEFAULT_ENDPOINT = "127.0.0.1:13141"


def register(subparsers) -> None:
    p = subparsers.add_parser("alerts", help="list, acknowledge, resolve and silence alerts of a running sidecar",
                              description=__doc__)
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT,
                   help=f"the alerts extension's control endpoint (default {DEFAULT_ENDPOINT})")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="alerts with state, ack and silence")
    ls.add_argument("--json", action="store_true", help="print the alerts as JSON")
    ls.add_argument("--active", action="store_true", help="leave out resolved alerts")
    sub.add_parser("rules", help="rules: kind, open alerts, items matched so far and when last")
    for name, helptext in (("ack", "acknowledge an alert"), ("resolve", "resolve an alert by hand")):
        a = sub.add_parser(name, help=helptext)
        a.add_argument("id")
        a.add_argument("--by", default=getpass.getuser(), help="who (default: the current user)")
        a.add_argument("--note", default="")
        if name == "ack":
            a.add_argument("--expires", metavar="DURATION", help="the ack lapses after this (5m, 2h)")
    s = sub.add_parser("silence", help="stop notifications for alerts whose labels match")
    s.add_argument("matchers", nargs="+", metavar="LABEL=VALUE")
    s.add_argument("--duration", default="1h", help="how long (default 1h)")
    s.add_argument("--by", default=getpass.getuser())
    s.add_argument("--comment", default="")
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    from otelplug.sidecar.config.decode import Duration   # the config's duration syntax
    return float(Duration.parse(text))


def _call(endpoint: str, path: str, body=None):
    req = urllib.request.Request(f"http://{endpoint}{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _table(alerts) -> str:
    rows = [("ID", "STATE", "ALERT", "VALUE", "SINCE", "ACK", "SILENCED", "LABELS")]
    for a in alerts:
        labels = ",".join(f"{k}={v}" for k, v in a["labels"].items() if k != "alertname")
        ack = f"{a['ack']['by']}: {a['ack']['note']}" if a.get("ack") else "-"
        rows.append((a["id"][:12], a["state"], a["rule"], f"{a['value']:g}", _when(a["active_since"]), ack,
                     a.get("silenced_by") or "-", labels or "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args) -> int:
    ep = args.endpoint
    try:
        if args.action == "list":
            alerts = _call(ep, "/api/alerts")
            if args.active:
                alerts = [a for a in alerts if a["state"] != "resolved"]
            print(json.dumps(alerts, indent=2) if args.json else _table(alerts))
        elif args.action == "rules":
            rows = [("RULE", "KIND", "OPEN ALERTS", "MATCHED", "LAST MATCH")]
            rows += [(r["name"], r["kind"], str(r["alerts"]), str(r.get("matched", "-")),
                      _when(r.get("last_match")) if r.get("last_match") else "never")
                     for r in _call(ep, "/api/rules")]
            widths = [max(len(r[i]) for r in rows) for i in range(5)]
            print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
        elif args.action == "ack":
            body = {"by": args.by, "note": args.note}
            if args.expires:
                body["expires"] = _seconds(args.expires)
            a = _call(ep, f"/api/alerts/{args.id}/ack", body)
            print(f"acknowledged {a['id']} ({a['rule']}) as {args.by}")
        elif args.action == "resolve":
            a = _call(ep, f"/api/alerts/{args.id}/resolve", {"by": args.by, "note": args.note})
            print(f"resolved {a['id']} ({a['rule']})")
        elif args.action == "silence":
            matchers = {}
            for m in args.matchers:
                k, sep, v = m.partition("=")
                if not sep or not k:
                    print(f"otelplug alerts silence: {m!r} is not LABEL=VALUE", file=sys.stderr)
                    return 2
                matchers[k] = v
            s = _call(ep, "/api/silences", {"matchers": matchers, "duration": _seconds(args.duration),
                                            "by": args.by, "comment": args.comment})
            print(f"silence {s['id']} until {_when(s['until'])}")
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read()).get("error")
        except ValueError:
            msg = exc.reason
        print(f"otelplug alerts {args.action}: {msg}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"otelplug alerts: cannot reach the sidecar's alerts endpoint {ep}: "
              f"{getattr(exc, 'reason', exc)} (is the alerts extension running there?)", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"otelplug alerts {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0
