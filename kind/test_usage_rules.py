"""Tests of usage_rules (plain data): python3 -m unittest discover -s kind -p 'test_*.py'"""

import json
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import usage_rules as u  # noqa: E402


class SelectorTest(unittest.TestCase):
    def test_parses_every_operator_into_sorted_requirements(self):
        got = u.parse_selector("tier!=db, app==web,env in (b, a),!canary,team")
        self.assertEqual(got, [
            ("app", "=", ("web",)),
            ("canary", "!exists", ()),
            ("env", "in", ("a", "b")),
            ("team", "exists", ()),
            ("tier", "!=", ("db",)),
        ])

    def test_equal_selectors_have_one_canonical_text(self):
        a = u.format_selector(u.parse_selector("app=web,env notin (y,x)"))
        b = u.format_selector(u.parse_selector(" env notin (x, y) , app==web "))
        self.assertEqual(a, b)
        self.assertEqual(a, "app=web,env notin (x,y)")

    def test_empty_selector_matches_everything(self):
        self.assertEqual(u.parse_selector(""), [])
        self.assertEqual(u.selector_cel([]), "true")

    def test_prefixed_keys_are_accepted(self):
        self.assertEqual(u.parse_selector("app.kubernetes.io/name=web"),
                         [("app.kubernetes.io/name", "=", ("web",))])

    def test_invalid_selectors_are_refused(self):
        for bad in ("a b=c", "app=we b", "app=web,", "env in (a", "env in a)",
                    'app="x"', "app=x)||true"):
            with self.subTest(bad=bad), self.assertRaises(u.UsageError):
                u.parse_selector(bad)
        # An empty value is a valid label value.
        self.assertEqual(u.parse_selector("app!="), [("app", "!=", ("",))])

    def test_selector_cel_per_operator(self):
        labels = "pod.metadata.labels"
        self.assertEqual(u.selector_cel([("app", "=", ("web",))]),
                         f'("app" in {labels} && {labels}["app"] == "web")')
        self.assertEqual(u.selector_cel([("app", "!=", ("web",))]),
                         f'(!("app" in {labels}) || {labels}["app"] != "web")')
        self.assertEqual(u.selector_cel([("env", "in", ("a", "b"))]),
                         f'("env" in {labels} && {labels}["env"] in ["a", "b"])')
        self.assertEqual(u.selector_cel([("env", "notin", ("a",))]),
                         f'(!("env" in {labels}) || !({labels}["env"] in ["a"]))')
        self.assertEqual(u.selector_cel([("x", "exists", ()), ("y", "!exists", ())]),
                         f'("x" in {labels}) && (!("y" in {labels}))')


class QuantityTest(unittest.TestCase):
    def test_values(self):
        self.assertAlmostEqual(u.quantity_value("150m"), 0.15)
        self.assertAlmostEqual(u.quantity_value("149991385n"), 0.149991385)
        self.assertEqual(u.quantity_value("64Mi"), 64 * 2 ** 20)
        self.assertEqual(u.quantity_value("2G"), 2e9)
        self.assertEqual(u.quantity_value("1e3"), 1000)
        self.assertEqual(u.quantity_value(".5"), 0.5)

    def test_check_refuses_zero_negative_and_garbage(self):
        for bad in ("0", "0m", "-1", "1x", "", "1.5.2", "Mi"):
            with self.subTest(bad=bad), self.assertRaises(u.UsageError):
                u.check_quantity(bad, "--cpu")
        self.assertEqual(u.check_quantity("1m", "--cpu"), "1m")

    def test_close_enough_tolerates_rounding_only(self):
        self.assertTrue(u.close_enough("cpu", "149991385n", "150m"))
        self.assertTrue(u.close_enough("cpu", "21m", "20m"))
        self.assertFalse(u.close_enough("cpu", "20m", "150m"))
        self.assertFalse(u.close_enough("cpu", "1m", "20m"))
        self.assertTrue(u.close_enough("memory", "65536Ki", "64Mi"))
        self.assertFalse(u.close_enough("memory", "1Mi", "64Mi"))


class RulesTest(unittest.TestCase):
    def test_make_rule_validates_and_canonicalises(self):
        rule = u.make_rule("default", "app==web", None, "150m", None)
        self.assertEqual(rule, {"namespace": "default", "selector": "app=web", "cpu": "150m"})
        with self.assertRaises(u.UsageError):
            u.make_rule("Bad_NS", "app=web", None, "1m", None)
        with self.assertRaises(u.UsageError):
            u.make_rule("default", "app=web", "a b", "1m", None)

    def test_set_replaces_same_key_and_puts_newest_first(self):
        rules = u.set_rule([], u.make_rule("ns", "app=web", None, "150m", "64Mi"))
        rules = u.set_rule(rules, u.make_rule("ns", "tier=fe", None, "10m", None))
        rules = u.set_rule(rules, u.make_rule("ns", "app==web", None, "20m", None))
        self.assertEqual(rules, [
            {"namespace": "ns", "selector": "app=web", "cpu": "20m"},
            {"namespace": "ns", "selector": "tier=fe", "cpu": "10m"},
        ])
        # Another container or namespace is another rule.
        rules = u.set_rule(rules, u.make_rule("ns", "app=web", "side", "5m", None))
        rules = u.set_rule(rules, u.make_rule("other", "app=web", None, "5m", None))
        self.assertEqual(len(rules), 4)

    def test_clear_removes_only_the_same_key(self):
        rules = [u.make_rule("ns", "app=web", None, "1m", None),
                 u.make_rule("ns", "app=web", "side", "1m", None)]
        kept, found = u.clear_rule(rules, "ns", "app==web", None)
        self.assertTrue(found)
        self.assertEqual(kept, [rules[1]])
        kept, found = u.clear_rule(kept, "ns", "app=db", None)
        self.assertFalse(found)
        self.assertEqual(kept, [rules[1]])

    def test_expression_without_rules_is_kwoks_default(self):
        expr = u.usage_expression([], "cpu")
        self.assertEqual(expr, '"kwok.x-k8s.io/usage-cpu" in pod.metadata.annotations\n'
                               '  ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-cpu"])\n'
                               '  : Quantity("1m")')

    def test_expression_tries_rules_in_order_and_skips_other_resources(self):
        rules = [u.make_rule("ns", "app=web", "app", "20m", None),
                 u.make_rule("ns", "", None, None, "64Mi"),
                 u.make_rule("ns", "app=web", None, "150m", None)]
        cpu = u.usage_expression(rules, "cpu")
        first = cpu.index('Quantity("20m")')
        second = cpu.index('Quantity("150m")')
        self.assertLess(first, second)
        self.assertNotIn("64Mi", cpu)
        self.assertIn('container.name == "app"', cpu)
        self.assertTrue(cpu.startswith('(pod.metadata.namespace == "ns" && ("app" in '))
        memory = u.usage_expression(rules, "memory")
        self.assertTrue(memory.startswith('(pod.metadata.namespace == "ns")\n'
                                          '  ? Quantity("64Mi")'))
        self.assertNotIn("150m", memory)
        self.assertEqual(cpu.count("?"), 3)  # two rules and the annotation fallback

    def test_object_round_trips_its_rules(self):
        rules = [u.make_rule("ns", "app=web", None, "150m", "64Mi")]
        obj = u.usage_object(rules)
        self.assertEqual(obj["kind"], "ClusterResourceUsage")
        self.assertEqual(obj["metadata"]["name"], u.OBJECT_NAME)
        self.assertEqual(set(obj["spec"]["usages"][0]["usage"]), {"cpu", "memory"})
        self.assertEqual(u.rules_of(json.loads(json.dumps(obj))), rules)
        self.assertEqual(u.rules_of(None), [])
        with self.assertRaises(u.UsageError):
            u.rules_of({"metadata": {"annotations": {u.RULES_ANNOTATION: "{"}}})
        with self.assertRaises(u.UsageError):
            u.rules_of({"metadata": {"annotations": {u.RULES_ANNOTATION: '{"a": 1}'}}})


class FollowingTest(unittest.TestCase):
    @staticmethod
    def metrics(name, *containers):
        return {"metadata": {"name": name},
                "containers": [{"name": c, "usage": {"cpu": cpu, "memory": "1Mi"}}
                               for c, cpu in containers]}

    def test_pods_following(self):
        rule = u.make_rule("ns", "app=web", None, "150m", None)
        items = [self.metrics("a", ("app", "150m")),
                 self.metrics("b", ("app", "20m")),
                 self.metrics("c", ("app", "150m"), ("side", "1m"))]
        self.assertEqual(u.pods_following(rule, ["a", "b", "c", "d"], items), ["a"])
        side = u.make_rule("ns", "app=web", "app", "150m", None)
        self.assertEqual(u.pods_following(side, ["a", "b", "c"], items), ["a", "c"])


if __name__ == "__main__":
    unittest.main()
