"""Simulated pod CPU and memory usage for process clusters (`kind/cluster usage`).

KWOK's kwok controller reports the usage of every container of its fake pods from
`ClusterResourceUsage` objects, whose values are CEL expressions evaluated at each scrape.
A cluster created with `--metrics` holds one such object, `flotilla-usage`: its expressions are
generated from a list of rules, newest first, each setting the CPU and/or memory of every
container (or one named container) of the pods that match a namespace and a label selector.
The rules themselves are kept in an annotation of the same object, so the cluster is the only
state. Pods that no rule matches use KWOK's defaults: the pod annotations
`kwok.x-k8s.io/usage-cpu` / `kwok.x-k8s.io/usage-memory`, else 1m CPU and 1Mi memory.

Only plain data here (no processes, no I/O), so that it can be tested on its own
(`python3 -m unittest discover -s kind -p 'test_*.py'`).
"""

from __future__ import annotations

import json
import re

#: Name of the cluster-scoped ClusterResourceUsage object that holds all rules.
OBJECT_NAME = "flotilla-usage"
#: Annotation of that object holding the rules as JSON.
RULES_ANNOTATION = "flotilla.io/usage-rules"
#: Resources a rule may set, with KWOK's default usage when no rule matches.
RESOURCES = {"cpu": "1m", "memory": "1Mi"}

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
LABEL_VALUE_RE = re.compile(rf"^({_NAME})?$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CONTAINER_RE = NAMESPACE_RE
# Kubernetes quantities without sign: 150m, 0.5, 64Mi, 1e3, 2G.
QUANTITY_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE]\d+|[KMGTPE]i|[numkMGTPE])?$")


class UsageError(ValueError):
    """A rule, selector or quantity that cannot be used; the message is meant for the user."""


def parse_selector(selector: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Parse a label selector (`app=web,tier!=db,env in (a,b),!canary`) into requirements.

    Each requirement is (key, operator, values) with operator one of `=`, `!=`, `in`,
    `notin`, `exists`, `!exists`; the empty selector matches every pod. Requirements and
    set values come back sorted, so equal selectors give equal results.
    """
    requirements = []
    for part in _split_requirements(selector):
        requirements.append(_parse_requirement(part))
    return sorted(set(requirements))


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise UsageError(f"selector '{selector}': unbalanced ')'")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise UsageError(f"selector '{selector}': unbalanced '('")
    parts.append(current)
    parts = [p.strip() for p in parts]
    if parts == [""]:
        return []
    if "" in parts:
        raise UsageError(f"selector '{selector}': empty requirement")
    return parts


def _check_key(key: str, part: str) -> str:
    if not LABEL_KEY_RE.match(key) or len(key) > 317:
        raise UsageError(f"selector requirement '{part}': '{key}' is not a valid label key")
    return key


def _check_value(value: str, part: str) -> str:
    if not LABEL_VALUE_RE.match(value):
        raise UsageError(f"selector requirement '{part}': '{value}' is not a valid label value")
    return value


def _parse_requirement(part: str) -> tuple[str, str, tuple[str, ...]]:
    match = re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", part)
    if match:
        key = _check_key(match.group(1), part)
        values = tuple(sorted({_check_value(v.strip(), part)
                               for v in match.group(3).split(",")}))
        return key, match.group(2), values
    match = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
    if match:
        op = "!=" if match.group(2) == "!=" else "="
        return _check_key(match.group(1), part), op, (_check_value(match.group(3), part),)
    if part.startswith("!"):
        return _check_key(part[1:].strip(), part), "!exists", ()
    return _check_key(part, part), "exists", ()


def format_selector(requirements: list[tuple[str, str, tuple[str, ...]]]) -> str:
    """The canonical text of parsed requirements (the form kubectl accepts)."""
    out = []
    for key, op, values in requirements:
        if op in ("=", "!="):
            out.append(f"{key}{op}{values[0]}")
        elif op in ("in", "notin"):
            out.append(f"{key} {op} ({','.join(values)})")
        elif op == "exists":
            out.append(key)
        else:
            out.append(f"!{key}")
    return ",".join(out)


def _cel_string(text: str) -> str:
    # Keys and values are validated above; json.dumps gives a valid CEL string literal for them.
    return json.dumps(text)


def selector_cel(requirements: list[tuple[str, str, tuple[str, ...]]]) -> str:
    """A CEL condition on `pod` that is true when the pod's labels match the requirements."""
    labels = "pod.metadata.labels"
    terms = []
    for key, op, values in requirements:
        k = _cel_string(key)
        has = f"{k} in {labels}"
        if op == "=":
            terms.append(f"({has} && {labels}[{k}] == {_cel_string(values[0])})")
        elif op == "!=":
            terms.append(f"(!({has}) || {labels}[{k}] != {_cel_string(values[0])})")
        elif op == "in":
            listed = ", ".join(_cel_string(v) for v in values)
            terms.append(f"({has} && {labels}[{k}] in [{listed}])")
        elif op == "notin":
            listed = ", ".join(_cel_string(v) for v in values)
            terms.append(f"(!({has}) || !({labels}[{k}] in [{listed}]))")
        elif op == "exists":
            terms.append(f"({has})")
        else:
            terms.append(f"(!({has}))")
    return " && ".join(terms) if terms else "true"


def check_quantity(value: str, flag: str) -> str:
    """Return `value` when it is a positive Kubernetes quantity, else raise UsageError."""
    if not QUANTITY_RE.match(value):
        raise UsageError(f"{flag} '{value}' is not a quantity such as 150m, 0.5, 64Mi or 1Gi")
    if quantity_value(value) <= 0:
        # metrics-server drops every container that reports zero CPU time or memory.
        raise UsageError(f"{flag} must be above zero (metrics-server ignores containers that "
                         "report zero usage); use 1m or 1Mi for an idle container")
    return value


def make_rule(namespace: str, selector: str, container: str | None,
              cpu: str | None, memory: str | None) -> dict:
    """Validate one rule; its selector is stored in canonical form."""
    if not NAMESPACE_RE.match(namespace):
        raise UsageError(f"--namespace '{namespace}' is not a valid namespace name")
    if container is not None and not CONTAINER_RE.match(container):
        raise UsageError(f"--container '{container}' is not a valid container name")
    rule = {"namespace": namespace, "selector": format_selector(parse_selector(selector))}
    if container is not None:
        rule["container"] = container
    if cpu is not None:
        rule["cpu"] = check_quantity(cpu, "--cpu")
    if memory is not None:
        rule["memory"] = check_quantity(memory, "--memory")
    return rule


def rule_key(rule: dict) -> tuple[str, str, str]:
    """What identifies a rule: namespace, selector and container (empty for all)."""
    return rule["namespace"], rule["selector"], rule.get("container", "")


def set_rule(rules: list[dict], rule: dict) -> list[dict]:
    """Put `rule` first (newest wins), replacing the rule with the same key."""
    return [rule] + [r for r in rules if rule_key(r) != rule_key(rule)]


def clear_rule(rules: list[dict], namespace: str, selector: str,
               container: str | None) -> tuple[list[dict], bool]:
    """Remove the rule with this key; also says whether there was one."""
    probe = make_rule(namespace, selector, container, None, None)
    kept = [r for r in rules if rule_key(r) != rule_key(probe)]
    return kept, len(kept) != len(rules)


def rule_condition(rule: dict) -> str:
    """The CEL condition under which a rule applies to a container of a pod."""
    parts = [f"pod.metadata.namespace == {_cel_string(rule['namespace'])}"]
    requirements = parse_selector(rule["selector"])
    if requirements:
        parts.append(selector_cel(requirements))
    if rule.get("container"):
        parts.append(f"container.name == {_cel_string(rule['container'])}")
    return " && ".join(parts)


def usage_expression(rules: list[dict], resource: str) -> str:
    """The CEL expression for one resource: the first matching rule that sets it, else KWOK's
    annotation or default."""
    annotation = _cel_string(f"kwok.x-k8s.io/usage-{resource}")
    fallback = (f"{annotation} in pod.metadata.annotations\n"
                f"  ? Quantity(pod.metadata.annotations[{annotation}])\n"
                f"  : Quantity({_cel_string(RESOURCES[resource])})")
    expression = fallback
    for rule in reversed([r for r in rules if resource in r]):
        expression = (f"({rule_condition(rule)})\n  ? Quantity({_cel_string(rule[resource])})\n"
                      f"  : {expression}")
    return expression


def usage_object(rules: list[dict]) -> dict:
    """The ClusterResourceUsage object carrying the rules."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterResourceUsage",
        "metadata": {"name": OBJECT_NAME,
                     "annotations": {RULES_ANNOTATION: json.dumps(rules, sort_keys=True)}},
        "spec": {"usages": [{"usage": {resource: {"expression": usage_expression(rules, resource)}
                                       for resource in RESOURCES}}]},
    }


def rules_of(obj: dict | None) -> list[dict]:
    """The rules stored in a ClusterResourceUsage object (none when absent or unreadable)."""
    if not obj:
        return []
    raw = obj.get("metadata", {}).get("annotations", {}).get(RULES_ANNOTATION, "[]")
    try:
        rules = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UsageError(f"annotation {RULES_ANNOTATION} of {OBJECT_NAME} is not JSON: "
                         f"{err}") from err
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise UsageError(f"annotation {RULES_ANNOTATION} of {OBJECT_NAME} is not a list of rules")
    return rules


# Quantities as numbers, to compare what PodMetrics report with what a rule set.
_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18, "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30,
           "Ti": 2.0 ** 40, "Pi": 2.0 ** 50, "Ei": 2.0 ** 60}


def quantity_value(text: str) -> float:
    """The numeric value of a quantity (`150m` -> 0.15, `64Mi` -> 67108864.0)."""
    match = QUANTITY_RE.match(text)
    if not match:
        raise UsageError(f"'{text}' is not a quantity")
    number = float(match.group(1))
    suffix = match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return number * 10.0 ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def close_enough(resource: str, reported: str, wanted: str) -> bool:
    """Whether a reported usage equals a wanted one, within 2% or the rounding of the report
    (1m of CPU, 1Ki of memory)."""
    got, want = quantity_value(reported), quantity_value(wanted)
    rounding = 0.0011 if resource == "cpu" else 1024.0
    return abs(got - want) <= max(0.02 * want, rounding)


def pods_following(rule: dict, pod_names: list[str], pod_metrics: list[dict]) -> list[str]:
    """Names of the pods (of `pod_names`) whose PodMetrics show the rule's usage in every
    container the rule covers."""
    by_name = {m.get("metadata", {}).get("name"): m for m in pod_metrics}
    done = []
    for name in pod_names:
        containers = by_name.get(name, {}).get("containers") or []
        covered = [c for c in containers
                   if not rule.get("container") or c.get("name") == rule["container"]]
        if covered and all(close_enough(res, c.get("usage", {}).get(res, "0"), rule[res])
                           for c in covered for res in RESOURCES if res in rule):
            done.append(name)
    return done
