// Checks the Kubernetes manifests of conf/kubernetes/ before they reach a cluster:
//   1. every object against the Kubernetes schemas (kubernetes-models: types, required fields,
//      formats) and against the Kubernetes API types with TypeScript's excess-property check, so
//      that a misspelt field (`replicaz`, `readinesProbe`) fails instead of being ignored;
//   2. the kustomization's own fields and files;
//   3. that the pieces agree with each other and with Thimble's configuration: ports, probes on
//      the admin port, the grace period against server.drain_timeout_ms, the memory limit against
//      the documented bound, the selectors of the Service, HPA and PodDisruptionBudget;
//   4. that the checker itself catches a misspelt field and a wrong type.
//
//   node tests/kubernetes/check.js CONF_DIR THIMBLE_BINARY     (after `npm ci` in tests/kubernetes)
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const YAML = require("yaml");

const [confDir, thimble] = process.argv.slice(2);
if (!confDir || !thimble) {
  console.error("usage: check.js CONF_DIR THIMBLE_BINARY");
  process.exit(2);
}

// What each kind is checked with: its kubernetes-models class and its kubernetes-types type.
const KINDS = {
  "apps/v1 Deployment": ["kubernetes-models/apps/v1/Deployment", "Deployment", "apps/v1"],
  "v1 Service": ["kubernetes-models/v1/Service", "Service", "core/v1"],
  "v1 ConfigMap": ["kubernetes-models/v1/ConfigMap", "ConfigMap", "core/v1"],
  "autoscaling/v2 HorizontalPodAutoscaler": [
    "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
    "HorizontalPodAutoscaler",
    "autoscaling/v2",
  ],
  "policy/v1 PodDisruptionBudget": [
    "kubernetes-models/policy/v1/PodDisruptionBudget",
    "PodDisruptionBudget",
    "policy/v1",
  ],
};
const KUSTOMIZATION_FIELDS = new Set([
  "apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator", "labels",
  "commonLabels", "commonAnnotations", "namespace", "namePrefix", "nameSuffix", "images",
  "patches", "replicas", "generatorOptions",
]);

// Schema and type errors of `objects` ({file, doc}), as "file: message" lines.
function schemaErrors(objects) {
  const errors = [];
  const typed = [];
  objects.forEach(({ file, doc }, i) => {
    const kind = `${doc.apiVersion} ${doc.kind}`;
    const known = KINDS[kind];
    if (!known) {
      errors.push(`${file}: no schema for ${kind}`);
      return;
    }
    const Model = require(known[0])[known[1]];
    try {
      new Model(doc).validate();
    } catch (e) {
      errors.push(`${file}: ${e.message}`);
    }
    typed.push(
      `// ${file}\nconst object${i}: import("kubernetes-types/${known[2]}").${known[1]} = ` +
        `${JSON.stringify(doc, null, 2)};\nvoid object${i};\n`,
    );
  });
  // TypeScript reports a property the type does not have ("Object literal may only specify
  // known properties"), at any depth.
  // Beside node_modules, where the type imports resolve.
  const dir = fs.mkdtempSync(path.join(__dirname, ".check-"));
  const source = path.join(dir, "manifests.ts");
  fs.writeFileSync(source, typed.join("\n"));
  try {
    execFileSync(
      process.execPath,
      [
        require.resolve("typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck",
        "--module", "commonjs", "--moduleResolution", "node10", "--ignoreDeprecations", "5.0",
        "--typeRoots", path.join(dir, "none"), source,
      ],
      { encoding: "utf8", stdio: "pipe" },
    );
  } catch (e) {
    // "manifests.ts(LINE,COL): error TS…" → the manifest the line belongs to.
    const starts = [];
    let line = 1;
    for (const block of typed) {
      starts.push([line, block.split("\n", 1)[0].slice(3)]);
      line += block.split("\n").length;
    }
    for (const text of (e.stdout || String(e)).split("\n")) {
      const m = /manifests\.ts\((\d+),\d+\): (error TS\d+: .*)$/.exec(text);
      if (!m) continue;
      const owner = starts.filter(([start]) => start <= Number(m[1])).pop();
      errors.push(`${owner ? owner[1] : "manifests"}: ${m[2]}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return errors;
}

function load(file) {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(confDir, file), "utf8")).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    return d.toJS();
  });
}

const failures = [];
const fail = (message) => failures.push(message);

// The kustomization: known fields, and every file it names exists.
const [kustomization] = load("kustomization.yaml");
for (const field of Object.keys(kustomization)) {
  if (!KUSTOMIZATION_FIELDS.has(field)) fail(`kustomization.yaml: unknown field ${field}`);
}
if (kustomization.kind !== "Kustomization") fail("kustomization.yaml: kind is not Kustomization");
const objects = [];
for (const file of kustomization.resources || []) {
  if (!fs.existsSync(path.join(confDir, file))) {
    fail(`kustomization.yaml: no file ${file}`);
    continue;
  }
  for (const doc of load(file)) objects.push({ file, doc });
}
const generated = {};
for (const generator of kustomization.configMapGenerator || []) {
  const data = {};
  for (const file of generator.files || []) {
    const text = fs.readFileSync(path.join(confDir, file), "utf8");
    data[path.basename(file)] = text;
  }
  generated[generator.name] = data;
  objects.push({
    file: `configMapGenerator ${generator.name}`,
    doc: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name }, data },
  });
}
for (const error of schemaErrors(objects)) fail(error);

// The pieces against each other and against Thimble's configuration.
const find = (kind) => objects.map((o) => o.doc).filter((d) => d.kind === kind);
const [deployment] = find("Deployment");
const [service] = find("Service");
const [hpa] = find("HorizontalPodAutoscaler");
const [pdb] = find("PodDisruptionBudget");
if (!deployment || !service || !hpa || !pdb) {
  fail("a Deployment, a Service, a HorizontalPodAutoscaler and a PodDisruptionBudget are needed");
} else {
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const labels = deployment.spec.template.metadata.labels;
  const matches = (selector) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v) &&
    Object.keys(selector).length > 0;
  if (!matches(deployment.spec.selector.matchLabels)) fail("the Deployment's selector misses its pods");
  if (!matches(service.spec.selector)) fail("the Service's selector misses the pods");
  if (!matches(pdb.spec.selector.matchLabels)) fail("the PodDisruptionBudget's selector misses the pods");
  if (hpa.spec.scaleTargetRef.kind !== "Deployment" || hpa.spec.scaleTargetRef.name !== deployment.metadata.name) {
    fail("the HorizontalPodAutoscaler does not scale the Deployment");
  }

  // Thimble's configuration as the pod sees it: the ConfigMap's file at the mounted path.
  const volume = pod.volumes.find((v) => v.configMap && generated[v.configMap.name]);
  if (!volume) fail("no volume mounts the generated ConfigMap");
  const mount = volume && container.volumeMounts.find((m) => m.name === volume.name);
  const configArg = container.args[container.args.indexOf("--config") + 1];
  const configFile = mount && configArg && configArg.startsWith(mount.mountPath + "/")
    ? configArg.slice(mount.mountPath.length + 1) : null;
  const configText = volume && configFile && generated[volume.configMap.name][configFile];
  if (!configText) fail(`--config ${configArg} is not a file of the mounted ConfigMap`);
  const config = configText ? YAML.parse(configText) : {};
  const server = config.server || {};

  // Thimble itself accepts it (with the keys the Secret would give).
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thimble-k8s-"));
    fs.writeFileSync(path.join(dir, "thimble.yaml"), configText || "");
    execFileSync(thimble, ["--check-config", "--config", path.join(dir, "thimble.yaml")], {
      env: { ...process.env, THIMBLE_SECURITY_KEYS: "a-key-from-the-secret" },
      stdio: "pipe",
    });
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    fail(`thimble --check-config: ${(e.stderr || e.message).toString().trim()}`);
  }

  const portOf = (name) => (container.ports.find((p) => p.name === name) || {}).containerPort;
  if (portOf("http") !== (server.port || 8888)) fail("the http port is not server.port");
  if (!server.admin_port || portOf("admin") !== server.admin_port) fail("the admin port is not server.admin_port");
  for (const [probe, route] of [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
    const get = container[probe] && container[probe].httpGet;
    if (!get || get.path !== route || get.port !== "admin") fail(`${probe} is not ${route} on the admin port`);
  }
  if (server.host !== "0.0.0.0") fail("server.host must be 0.0.0.0 in a pod");
  const preStop = container.lifecycle && container.lifecycle.preStop && container.lifecycle.preStop.exec;
  const pause = preStop && preStop.command[0] === "sleep" ? Number(preStop.command[1]) : 0;
  if (!pause) fail("no preStop pause: the pod would drain before its endpoints are removed");
  const drain = (server.drain_timeout_ms || 20000) / 1000;
  if (!(pod.terminationGracePeriodSeconds > drain + pause)) {
    fail(`terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed ` +
         `drain_timeout_ms (${drain} s) + preStop (${pause} s)`);
  }
  const strategy = deployment.spec.strategy.rollingUpdate || {};
  if (strategy.maxUnavailable !== 0) fail("a rolling update must not take a replica before its successor is ready");

  // The memory bound of README.md ("Hostile input, overload and faults"): 55 MiB + the two
  // caches + per worker one decoded original and a progressive JPEG's coefficients.
  const mib = (bytes) => bytes / (1 << 20);
  const quantity = (q) => {
    const m = /^([0-9.]+)(Ki|Mi|Gi)?$/.exec(String(q));
    return m ? Number(m[1]) * { Ki: 1 / 1024, Mi: 1, Gi: 1024, undefined: 1 / (1 << 20) }[m[2]] : NaN;
  };
  const limits = config.limits || {};
  const workers = server.workers;
  if (!workers) fail("server.workers must be set in a pod (the CPU limit, not the node's cores)");
  const bound = 55 + mib((config.result_cache || {}).memory_bytes ?? 256 * 2 ** 20) +
    mib((config.original_cache || {}).memory_bytes ?? 64 * 2 ** 20) +
    (workers || 1) * (mib(4 * (limits.max_source_pixels ?? 1e8)) + mib(limits.max_decoder_memory_bytes ?? 512 * 2 ** 20));
  const limit = quantity(container.resources.limits.memory);
  const request = quantity(container.resources.requests.memory);
  if (!(limit >= bound)) fail(`the memory limit ${limit} MiB is under Thimble's bound of ${Math.ceil(bound)} MiB`);
  if (!(request <= limit)) fail("the memory request is over the limit");
  if (Number(container.resources.limits.cpu) !== workers) fail("the CPU limit is not server.workers");
  console.log(`memory bound ${Math.ceil(bound)} MiB, limit ${limit} MiB, request ${request} MiB; ` +
              `grace ${pod.terminationGracePeriodSeconds} s for a ${drain} s drain + ${pause} s preStop`);
}

// The checker catches what it is for: a misspelt field anywhere, and a wrong type.
const typo = JSON.parse(JSON.stringify(objects.filter((o) => o.doc.kind === "Deployment")));
typo[0].doc.spec.template.spec.containers[0].readinesProbe = typo[0].doc.spec.template.spec.containers[0].readinessProbe;
delete typo[0].doc.spec.template.spec.containers[0].readinessProbe;
if (!schemaErrors(typo).some((e) => e.includes("readinesProbe"))) fail("the check misses a misspelt field");
const wrong = JSON.parse(JSON.stringify(typo));
delete wrong[0].doc.spec.template.spec.containers[0].readinesProbe;
wrong[0].doc.spec.replicas = "three";
if (!schemaErrors(wrong).some((e) => e.includes("replicas"))) fail("the check misses a wrong type");

if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
console.log(`conf/kubernetes: ${objects.length} objects valid and consistent`);
