#!/usr/bin/env python3
"""Cross-check of the case files in this directory.

1. Structure: every file has description/document/cases, names are unique across files,
   want fields have the shapes README.md gives, a served variation index holds the wanted value,
   a served default equals the case's default, version is present exactly when the flag is.
2. Semantics: a second, independent reading of SPEC sections 1-3 in plain Python (plus the
   readings chosen in ambiguous.json) evaluates every case and reports disagreements.
   It is a test aid, not a reference implementation: a disagreement means "look at both".

Usage: python3 crosscheck.py   (exit status 1 on any problem)
"""
import json, glob, re, datetime, sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bucket import bucket

class Malformed(Exception): pass
ABSENT = object()
KEYRE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
OPS = {"in", "startsWith", "endsWith", "contains", "matches", "lessThan", "lessThanOrEqual", "greaterThan",
       "greaterThanOrEqual", "before", "after", "semVerEqual", "semVerLessThan", "semVerGreaterThan", "inSegment", "exists"}

def isnum(v): return isinstance(v, (int, float)) and not isinstance(v, bool)
def isint(v): return isinstance(v, int) and not isinstance(v, bool)

def get(ctx, path):
    cur = ctx
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return ABSENT
        cur = cur[p]
    return ABSENT if cur is None else cur

def parse_time(v):
    if isnum(v):
        return v
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)", v)
    if not m:
        return None
    tz = m.group(8)
    off = 0 if tz in "Zz" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6]))
    d = datetime.datetime(*map(int, m.group(1, 2, 3, 4, 5, 6)), tzinfo=datetime.timezone.utc)
    ms = int(d.timestamp()) * 1000 - off * 60000
    if m.group(7):
        ms += int((m.group(7)[1:] + "000")[:3])
    return ms

def parse_semver(v):
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?", v)
    if not m:
        return None
    nums = tuple(int(x) if x else 0 for x in m.group(1, 2, 3))
    pre = m.group(4).split(".") if m.group(4) else None
    return nums, pre

def semcmp(a, b):
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    pa, pb = a[1], b[1]
    if pa is None and pb is None: return 0
    if pa is None: return 1
    if pb is None: return -1
    for x, y in zip(pa, pb):
        if x == y: continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd: return -1 if int(x) < int(y) else 1
        if xd: return -1
        if yd: return 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))

def match_one(op, a, v):
    if op == "in":
        if isinstance(a, (dict, list)): return False
        if isnum(a) and isnum(v): return a == v
        return type(a) == type(v) and a == v
    if op in ("startsWith", "endsWith", "contains", "matches"):
        if not isinstance(a, str) or not isinstance(v, str): return False
        return {"startsWith": a.startswith, "endsWith": a.endswith, "contains": lambda x: x in a,
                "matches": lambda x: re.search(x, a) is not None}[op](v)
    if op in ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"):
        if not isnum(a) or not isnum(v): return False
        return {"lessThan": a < v, "lessThanOrEqual": a <= v, "greaterThan": a > v, "greaterThanOrEqual": a >= v}[op]
    if op in ("before", "after"):
        ta, tv = parse_time(a), parse_time(v)
        if ta is None or tv is None: return False
        return ta < tv if op == "before" else ta > tv
    if op.startswith("semVer"):
        sa, sv = parse_semver(a), parse_semver(v)
        if sa is None or sv is None: return False
        c = semcmp(sa, sv)
        return {"semVerEqual": c == 0, "semVerLessThan": c < 0, "semVerGreaterThan": c > 0}[op]
    raise Malformed("op")

class Ev:
    def __init__(self, doc):
        self.flags, self.segs = doc["flags"], doc.get("segments", {})

    def check_serve(self, s, nv, where):
        if not isinstance(s, dict) or (("variation" in s) == ("rollout" in s)): raise Malformed(where)
        if "variation" in s:
            if not isint(s["variation"]) or not 0 <= s["variation"] < nv: raise Malformed(where)
            return
        r = s["rollout"]
        vs = r.get("variations")
        if not isinstance(vs, list) or not vs: raise Malformed("rollout")
        for vw in vs:
            if not isint(vw.get("variation")) or not 0 <= vw["variation"] < nv or not isint(vw.get("weight")) or vw["weight"] < 0:
                raise Malformed("rollout variation")
        if sum(vw["weight"] for vw in vs) != 100000: raise Malformed("weights")
        for st in r.get("schedule", []) or []:
            if len(st["weights"]) != len(vs) or sum(st["weights"]) != 100000 or parse_time(st["at"]) is None: raise Malformed("schedule")
        if "salt" in r and not isinstance(r["salt"], str): raise Malformed("salt")

    def check_clause(self, c):
        if not isinstance(c, dict) or c.get("op") not in OPS: raise Malformed("op")
        if not isinstance(c.get("values", []), list): raise Malformed("values")
        if "negate" in c and not isinstance(c["negate"], bool): raise Malformed("negate")
        vals, op = c.get("values", []), c["op"]
        need = {"startsWith": str, "endsWith": str, "contains": str, "matches": str, "semVerEqual": str,
                "semVerLessThan": str, "semVerGreaterThan": str, "inSegment": str}
        for v in vals:
            if op in need and not isinstance(v, str): raise Malformed("value type")
            if op in ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual") and not isnum(v): raise Malformed("value type")
            if op in ("before", "after") and not (isnum(v) or isinstance(v, str)): raise Malformed("value type")
            if op == "in" and isinstance(v, (dict, list)): raise Malformed("value type")
        if c["op"] == "matches":
            for v in c["values"]:
                if isinstance(v, str):
                    try: re.compile(v)
                    except re.error: raise Malformed("regex")

    def prereq_keys(self, key):
        f = self.flags.get(key)
        prs = f.get("prerequisites", []) if isinstance(f, dict) else []
        if not isinstance(prs, list):
            return []
        return [p["flag"] for p in prs if isinstance(p, dict) and isinstance(p.get("flag"), str) and p["flag"] in self.flags]

    def in_cycle(self, key):
        seen, todo = set(), list(self.prereq_keys(key))
        while todo:
            k = todo.pop()
            if k == key:
                return True
            if k not in seen:
                seen.add(k)
                todo.extend(self.prereq_keys(k))
        return False

    def depth(self, key, stack=()):
        """Longest chain of prerequisite hops below key (cycles are cut)."""
        if key in stack:
            return 0
        return max([1 + self.depth(k, stack + (key,)) for k in self.prereq_keys(key)], default=0)

    def check_flag(self, key, f):
        if not KEYRE.fullmatch(key): raise Malformed("key")
        if not isinstance(f.get("on", False), bool): raise Malformed("on")
        if "description" in f and not isinstance(f["description"], str): raise Malformed("description")
        vs = f.get("variations")
        if not isinstance(vs, list) or not vs: raise Malformed("variations")
        kinds = {("bool" if isinstance(v, bool) else "number" if isnum(v) else "string" if isinstance(v, str) else "json") for v in vs}
        if len(kinds) != 1: raise Malformed("mixed")
        nv = len(vs)
        if "offVariation" in f and (not isint(f["offVariation"]) or not 0 <= f["offVariation"] < nv): raise Malformed("off")
        if "salt" in f and not isinstance(f["salt"], str): raise Malformed("salt")
        if "fallthrough" not in f: raise Malformed("fallthrough")
        self.check_serve(f["fallthrough"], nv, "fallthrough")
        for t in f.get("targets", []):
            if not isint(t.get("variation")) or not 0 <= t["variation"] < nv: raise Malformed("target")
        rules = f.get("rules", [])
        if not isinstance(rules, list): raise Malformed("rules")
        for r in rules:
            for c in r.get("clauses", []): self.check_clause(c)
            self.check_serve(r.get("serve"), nv, "rule")
        for p in f.get("prerequisites", []):
            if not isinstance(p.get("flag"), str) or not isint(p.get("variation")): raise Malformed("prereq")
        if self.in_cycle(key): raise Malformed("cycle")
        if self.depth(key) > 16: raise Malformed("depth")

    def malformed(self, key):
        try:
            self.check_flag(key, self.flags[key])
            return False
        except Malformed:
            return True
        except Exception:
            return True

    # --- segments
    def seg_depth(self, skey, stack=()):
        """1 for a segment using no inSegment, else 1 + the greatest depth of those it uses (cycles are cut)."""
        s = self.segs.get(skey)
        if skey in stack or not isinstance(s, dict): return 0
        refs = [k for r in s.get("rules", []) for c in r.get("clauses", []) if c.get("op") == "inSegment"
                for k in c.get("values", []) if k in self.segs]
        return 1 + max([self.seg_depth(k, stack + (skey,)) for k in set(refs)], default=0)

    def in_segment(self, skey, ctx, stack=()):
        s = self.segs.get(skey)
        if s is None: return False
        if skey in stack: raise Malformed("segment cycle")
        if self.seg_depth(skey) > 16: raise Malformed("segment depth")
        if not isinstance(s.get("included", []), list) or not isinstance(s.get("excluded", []), list): raise Malformed("segment")
        av = get(ctx, s.get("attribute", "key"))
        if av is not ABSENT and av in s.get("excluded", []): return False
        if av is not ABSENT and av in s.get("included", []): return True
        for r in s.get("rules", []):
            if all(self.clause(c, ctx, stack + (skey,)) for c in r.get("clauses", [])):
                if "weight" in r:
                    b, _ = self.bucket_of(ctx, r.get("bucketBy", "key"), r.get("salt") or skey)
                    if b >= r["weight"]: continue
                return True
        return False

    def clause(self, c, ctx, stack=()):
        op, neg = c["op"], c.get("negate", False)
        if op == "inSegment":
            res = any(self.in_segment(k, ctx, stack) for k in c.get("values", []))
            return res != neg
        if op in ("before", "after") and "attribute" not in c:
            a = self.now
        else:
            a = get(ctx, c["attribute"])
        if op == "exists":
            return (a is not ABSENT) != neg
        if a is ABSENT:
            return False
        items = a if isinstance(a, list) else [a]
        res = any(match_one(op, x, v) for x in items for v in c.get("values", []))
        return res != neg

    def bucket_of(self, ctx, by, salt):
        v = get(ctx, by)
        if isinstance(v, str): return bucket(salt, v), False
        if isnum(v) and float(v).is_integer(): return bucket(salt, str(int(v))), False
        return 0, True

    def serve(self, key, f, s, ctx, t):
        if "variation" in s:
            return s["variation"], {}
        r = s["rollout"]
        b, fb = self.bucket_of(ctx, r.get("bucketBy", "key"), r.get("salt") or f.get("salt") or key)
        ws = [vw["weight"] for vw in r["variations"]]
        if r.get("schedule"):
            sch = r["schedule"]
            ts = [parse_time(x["at"]) for x in sch]
            if t <= ts[0]: ws = sch[0]["weights"]
            elif t >= ts[-1]: ws = sch[-1]["weights"]
            else:
                i = max(j for j in range(len(ts)) if ts[j] <= t)
                A, B = sch[i]["weights"], sch[i + 1]["weights"]
                def td(x, y): return (abs(x) // y) * (1 if x >= 0 else -1)  # y > 0; truncates toward zero
                w = [A[j] + td((B[j] - A[j]) * (t - ts[i]), ts[i + 1] - ts[i]) for j in range(len(A) - 1)]
                ws = w + [100000 - sum(w)]
        run = 0
        for vw, w in zip(r["variations"], ws):
            run += w
            if run > b:
                extra = {"inRollout": True}
                if fb: extra["bucketFallback"] = True
                if r.get("experiment"): extra["inExperiment"] = True
                return vw["variation"], extra

    def eval_raw(self, key, ctx, t):
        """returns (variation or None, reason dict)"""
        f = self.flags.get(key)
        if f is None: return None, {"kind": "ERROR", "errorKind": "FLAG_NOT_FOUND"}
        if self.malformed(key): return None, {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"}
        if not isinstance(ctx.get("key"), str): return None, {"kind": "ERROR", "errorKind": "INVALID_CONTEXT"}
        if not f.get("on", False): return f.get("offVariation"), {"kind": "OFF"}
        for p in f.get("prerequisites", []):
            pf = self.flags.get(p["flag"])
            ok = False
            if pf is not None and pf.get("on") is True and not self.malformed(p["flag"]):
                pv, _ = self.eval_raw(p["flag"], ctx, t)
                ok = pv == p["variation"]
            if not ok:
                return f.get("offVariation"), {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": p["flag"]}
        try:
            for tg in f.get("targets", []):
                a = get(ctx, tg.get("attribute", "key"))
                if a is not ABSENT and any(match_one("in", a, v) for v in tg.get("values", [])):
                    return tg["variation"], {"kind": "TARGET_MATCH"}
            for i, r in enumerate(f.get("rules", [])):
                if all(self.clause(c, ctx) for c in r.get("clauses", [])):
                    v, extra = self.serve(key, f, r["serve"], ctx, t)
                    rs = {"kind": "RULE_MATCH", "ruleIndex": i}
                    if r.get("id"): rs["ruleId"] = r["id"]
                    rs.update(extra)
                    return v, rs
            v, extra = self.serve(key, f, f["fallthrough"], ctx, t)
            rs = {"kind": "FALLTHROUGH"}; rs.update(extra)
            return v, rs
        except Malformed:
            return None, {"kind": "ERROR", "errorKind": "MALFORMED_FLAG"}

    def evaluate(self, key, ctx, t, typ, default):
        self.now = t  # before/after without an attribute compare the evaluation time
        var, reason = self.eval_raw(key, ctx, t)
        f = self.flags.get(key)
        out = {}
        if var is None:
            out["value"] = default
        else:
            val = f["variations"][var]
            okt = {"any": True, "bool": isinstance(val, bool), "string": isinstance(val, str),
                   "int": isnum(val) and float(val).is_integer(), "float": isnum(val),
                   "json": isinstance(val, (dict, list))}[typ]
            if not okt:
                var, reason, out["value"] = None, {"kind": "ERROR", "errorKind": "WRONG_TYPE"}, default
            else:
                out["value"] = val
                out["variation"] = var
        if f is not None: out["version"] = f.get("version", 0)
        out["reason"] = reason
        return out


HERE = os.path.dirname(os.path.abspath(__file__))


def structure():
    names = {}
    problems = []

    def expect(cond, where, what):
        if not cond:
            problems.append("%s: %s" % (where, what))

    total = 0
    for p in sorted(glob.glob(os.path.join(HERE, "*.json"))):
        base = os.path.basename(p)
        d = json.load(open(p))
        expect(set(d) == {"description", "document", "cases"}, base, "top-level members")
        flags = d["document"]["flags"]
        for c in d["cases"]:
            where = "%s | %s" % (base, c.get("name"))
            expect(c["name"] not in names, where, "name also used in " + names.get(c["name"], ""))
            names[c["name"]] = base
            w, r = c["want"], c["want"]["reason"]
            expect(set(c) <= {"name", "flag", "context", "at", "type", "default", "want"}, where, "case members")
            expect(set(w) <= {"value", "variation", "version", "reason"}, where, "want members")
            expect(set(r) <= {"kind", "ruleIndex", "ruleId", "prerequisiteKey", "errorKind", "inRollout",
                              "inExperiment", "bucketFallback"}, where, "reason members")
            expect(r["kind"] in {"OFF", "FALLTHROUGH", "TARGET_MATCH", "RULE_MATCH", "PREREQUISITE_FAILED", "ERROR"},
                   where, "reason kind")
            expect(("errorKind" in r) == (r["kind"] == "ERROR"), where, "errorKind only with ERROR")
            expect(("prerequisiteKey" in r) == (r["kind"] == "PREREQUISITE_FAILED"), where, "prerequisiteKey only with PREREQUISITE_FAILED")
            expect(r["kind"] == "RULE_MATCH" or ("ruleIndex" not in r and "ruleId" not in r), where, "rule fields only with RULE_MATCH")
            expect(isinstance(c["context"], dict), where, "context is an object")
            f = flags.get(c["flag"])
            if f is None:
                expect(r.get("errorKind") == "FLAG_NOT_FOUND" and "version" not in w, where, "absent flag: FLAG_NOT_FOUND, no version")
            else:
                expect(w.get("version") == f.get("version"), where, "version is the flag's version")
            if "variation" in w:
                ok = f is not None and isinstance(f.get("variations"), list) and 0 <= w["variation"] < len(f["variations"])
                expect(ok and f["variations"][w["variation"]] == w["value"], where, "value is variations[variation]")
            else:
                expect(w["value"] == c.get("default"), where, "default served: value is the case default")
                expect(not r.get("inRollout"), where, "default served: no inRollout")
        print("%-30s %3d cases" % (base, len(d["cases"])))
        total += len(d["cases"])
    print("total %d cases" % total)
    for pr in problems:
        print("STRUCTURE", pr)
    return not problems


def semantics():
    bad = 0
    for p in sorted(glob.glob(os.path.join(HERE, "*.json"))):
        d = json.load(open(p))
        ev = Ev(d["document"])
        for c in d["cases"]:
            t = parse_time(c.get("at", "2026-01-01T00:00:00Z"))
            got = ev.evaluate(c["flag"], c["context"], t, c.get("type", "any"), c.get("default"))
            if got != c["want"]:
                bad += 1
                print("%s | %s\n   want %s\n   got  %s" % (os.path.basename(p), c["name"], json.dumps(c["want"]), json.dumps(got)))
    print("mismatches:", bad)

    return bad == 0


if __name__ == "__main__":
    ok = structure()
    ok = semantics() and ok
    sys.exit(0 if ok else 1)
