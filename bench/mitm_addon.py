"""mitmproxy addon equivalent to the secrets proxy's work per request:
replace sealed tokens in the request target, headers and body, and scrub the
values out of response headers and body. Tokens/values from OSB_BENCH_SECRETS
(JSON {token: value})."""
import json
import os

SECRETS = json.loads(os.environ.get("OSB_BENCH_SECRETS", "{}"))


class TokenSwap:
    def request(self, flow):
        r = flow.request
        for token, value in SECRETS.items():
            if token in r.path:
                r.path = r.path.replace(token, value)
            for k, v in list(r.headers.items()):
                if token in v:
                    r.headers[k] = v.replace(token, value)
            if r.raw_content and token.encode() in r.raw_content:
                r.content = r.raw_content.replace(token.encode(), value.encode())

    def response(self, flow):
        resp = flow.response
        for token, value in SECRETS.items():
            for k, v in list(resp.headers.items()):
                if value in v:
                    resp.headers[k] = v.replace(value, token)
            if resp.raw_content and value.encode() in resp.raw_content:
                resp.content = resp.raw_content.replace(value.encode(), token.encode())


addons = [TokenSwap()]
