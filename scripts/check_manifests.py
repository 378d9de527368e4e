#!/usr/bin/env python3
"""Renders every kustomization under manifests/ with `kubectl kustomize`, validates the result
with `kubernetes-validate --strict` (a misspelt field fails), and checks what Warren relies on:
parallel pod management, the peer Service publishing not-ready pods, probes on /readyz and
/healthz, a grace period longer than the preStop pause plus drain.timeout_ms, the ConfigMap
carrying warren.toml, and the overlays' shapes (dev: one node, no HPA/PDB; prod: three or more
nodes, anti-affinity, a ServiceMonitor, an ingress-nginx Ingress exposing only the player
endpoints with WebSocket timeouts over two heartbeats, a body size and TLS).

    pip install kubernetes-validate   # brings PyYAML
    python3 scripts/check_manifests.py
Exit status 0 when everything holds; otherwise every problem is printed.
"""
import os
import subprocess
import sys
import tempfile
import tomllib

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGETS = ["manifests/base", "manifests/overlays/dev", "manifests/overlays/prod"]
# Kinds outside Kubernetes itself, which kubernetes-validate has no schema for.
CUSTOM_KINDS = {"ServiceMonitor"}
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def render(target):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, target)],
                         capture_output=True, text=True)
    check(out.returncode == 0, f"{target}: kubectl kustomize failed: {out.stderr.strip()}")
    return out.stdout


def validate(target, text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        out = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", f.name],
                             capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    lines = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
    for l in lines:
        custom = l.startswith("WARN") and any(f"kind {k} " in l for k in CUSTOM_KINDS)
        check(custom, f"{target}: {l}")
    check(out.returncode == 0, f"{target}: kubernetes-validate exited {out.returncode}")


def by_kind(docs, kind):
    return [d for d in docs if d and d.get("kind") == kind]


def shape(target, docs):
    sts = by_kind(docs, "StatefulSet")
    check(len(sts) == 1, f"{target}: expected one StatefulSet")
    if not sts:
        return
    s = sts[0]["spec"]
    pod = s["template"]["spec"]
    c = pod["containers"][0]
    check(s.get("podManagementPolicy") == "Parallel", f"{target}: podManagementPolicy is not Parallel")
    check(s.get("serviceName") == "warren-peers", f"{target}: serviceName is not warren-peers")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{target}: readiness probe is not /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{target}: liveness probe is not /healthz")
    env = {e["name"]: e for e in c.get("env", [])}
    for key in ("WARREN_AUTH__JWT_SECRET", "WARREN_CLUSTER__COOKIE", "WARREN_AUTH__ADMIN_TOKEN"):
        check("secretKeyRef" in env.get(key, {}).get("valueFrom", {}), f"{target}: {key} does not come from the Secret")
    check(env.get("WARREN_CLUSTER__ADVERTISE", {}).get("value") == "$(POD_IP):7351",
          f"{target}: the advertised cluster address is not the pod IP")
    cms = by_kind(docs, "ConfigMap")
    toml_text = next((cm["data"]["warren.toml"] for cm in cms if "warren.toml" in cm.get("data", {})), None)
    check(toml_text is not None, f"{target}: no ConfigMap carries warren.toml")
    drain_ms = tomllib.loads(toml_text or "").get("drain", {}).get("timeout_ms", 30000)
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > pause + drain_ms / 1000,
          f"{target}: terminationGracePeriodSeconds {grace} <= preStop {pause} s + drain {drain_ms} ms")
    peers = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "warren-peers"]
    check(bool(peers) and peers[0]["spec"].get("clusterIP") == "None"
          and peers[0]["spec"].get("publishNotReadyAddresses") is True,
          f"{target}: warren-peers is not a headless Service publishing not-ready pods")
    clients = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "warren"]
    check(bool(clients), f"{target}: no client Service `warren`")
    ann = s["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics",
          f"{target}: pods lack the Prometheus scrape annotations")
    replicas = s.get("replicas", 1)
    if target.endswith("dev"):
        check(replicas == 1, f"{target}: dev runs {replicas} nodes, not 1")
        check(not by_kind(docs, "HorizontalPodAutoscaler") and not by_kind(docs, "PodDisruptionBudget"),
              f"{target}: dev keeps an HPA or a PDB")
    else:
        check(replicas >= 3, f"{target}: {replicas} nodes, fewer than 3")
        check(len(by_kind(docs, "PodDisruptionBudget")) == 1, f"{target}: no PodDisruptionBudget")
        hpa = by_kind(docs, "HorizontalPodAutoscaler")
        check(len(hpa) == 1 and hpa[0]["spec"]["scaleTargetRef"]["kind"] == "StatefulSet",
              f"{target}: no HorizontalPodAutoscaler of the StatefulSet")
    if target.endswith("prod"):
        check("podAntiAffinity" in pod.get("affinity", {}), f"{target}: no anti-affinity across hosts")
        check(len(by_kind(docs, "ServiceMonitor")) == 1, f"{target}: no ServiceMonitor")
        ingress(target, docs, tomllib.loads(toml_text or ""))


def ingress(target, docs, cfg):
    """prod's Ingress (ingress-nginx): WebSocket timeouts longer than two heartbeats, a body
    size, TLS, the client Service as backend, and nothing but the player endpoints exposed."""
    ing = by_kind(docs, "Ingress")
    check(len(ing) == 1, f"{target}: expected one Ingress")
    if not ing:
        return
    ann = ing[0]["metadata"].get("annotations", {})
    heartbeat_s = cfg.get("limits", {}).get("heartbeat_ms", 15000) / 1000
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        value = int(ann.get(f"nginx.ingress.kubernetes.io/{key}", "60"))
        check(value > 2 * heartbeat_s, f"{target}: Ingress {key} {value} s is not over two heartbeats")
    check("nginx.ingress.kubernetes.io/proxy-body-size" in ann, f"{target}: Ingress sets no body size")
    spec = ing[0]["spec"]
    check(bool(spec.get("tls")), f"{target}: Ingress has no TLS section")
    paths = [p for r in spec.get("rules", []) for p in r["http"]["paths"]]
    exposed = {p["path"] for p in paths}
    check("/v1/ws" in exposed and "/v1/auth/guest" in exposed,
          f"{target}: Ingress does not route /v1/ws and /v1/auth/guest")
    check(exposed <= {"/v1/ws", "/v1/auth/guest"},
          f"{target}: Ingress exposes more than the player endpoints: {sorted(exposed)}")
    for p in paths:
        svc = p["backend"]["service"]
        check(svc["name"] == "warren" and svc["port"].get("name") == "http",
              f"{target}: Ingress path {p['path']} does not go to the warren Service's http port")


for t in TARGETS:
    text = render(t)
    if not text:
        continue
    validate(t, text)
    try:
        shape(t, list(yaml.safe_load_all(text)))
    except (KeyError, IndexError, TypeError) as e:
        problems.append(f"{t}: missing or malformed field {e!r}")

for p in problems:
    print("FAIL", p)
print(f"{len(TARGETS)} kustomizations rendered and validated; {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
