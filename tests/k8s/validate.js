#!/usr/bin/env node
// Validates udf-builder's Kubernetes manifests (deploy/k8s/*.yaml).
//
//   node tests/k8s/validate.js FILE.yaml|DIR ...
//
// 1. Every YAML document of every file is mapped from its apiVersion and kind
//    to the kubernetes-models class (kubernetes-models/v1, apps/v1, batch/v1,
//    rbac.authorization.k8s.io/v1, networking.k8s.io/v1, policy/v1,
//    admissionregistration.k8s.io/v1, ...) and checked with .validate()
//    against the Kubernetes OpenAPI schema.  An apiVersion/kind the package
//    does not know is a failure, never a skip.  Namespaced objects must name
//    their namespace, cluster-scoped ones must not.
// 2. Policy, on the documents taken together (they are one deployment):
//    - every container of every workload runs as non-root, with a read-only
//      root filesystem, no privilege escalation, all capabilities dropped, a
//      RuntimeDefault (or Localhost) seccomp profile, no host namespaces or
//      hostPath volumes, resource requests and a memory limit, and a
//      writable volume at /tmp;
//    - the Deployment running `udf-builder serve` has >= 2 replicas,
//      readiness on /readyz and liveness on /healthz on the admin port 9090,
//      container ports 50051 and 9090, its token secrets from a Secret, its
//      --config file from a ConfigMap whose JSON agrees with the pod (ports,
//      a writable store, base images pinned by digest, a registry dest, no
//      secret in it, grace_ms below the termination grace period), a Service
//      on 50051 selecting it, and a ServiceAccount bound to the RBAC the
//      kubernetes scheduler backend needs;
//    - the Job running `udf-builder prebuild` is Indexed, completions ==
//      parallelism, passes --shard $(JOB_COMPLETION_INDEX)/<completions>,
//      writes --report to a writable volume, reads its input from a mounted
//      volume, and uses the service's base image and destination;
//    - every ConfigMap, Secret, ServiceAccount and PVC a pod refers to is
//      among the documents.
// With --sandbox first, the files hold the kubernetes scheduler's sandbox
// objects instead (Namespace, Deployment, Service, NetworkPolicy per UDF):
// schema validation as in 1., the container checks of 2., plus: the namespace
// is udf-<label> enforcing the restricted Pod Security level, every pod
// names a runtimeClassName and has readiness on /health:8080, and no
// NetworkPolicy egress rule is open to 169.254.169.254.
// Prints TAP ("ok N - file: Kind/name"), exits 1 on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

let n = 0;
let failures = 0;

function report(desc, problems) {
	n++;
	if (problems.length === 0) {
		console.log(`ok ${n} - ${desc}`);
		return;
	}
	failures++;
	console.log(`not ok ${n} - ${desc}`);
	for (const p of problems) console.log(`#   ${p}`);
}

// ---- loading ---------------------------------------------------------------

function expandArgs(args) {
	const files = [];
	for (const a of args) {
		if (fs.existsSync(a) && fs.statSync(a).isDirectory()) {
			for (const f of fs.readdirSync(a).sort())
				if (/\.ya?ml$/.test(f)) files.push(path.join(a, f));
		} else {
			files.push(a);
		}
	}
	return files;
}

// Kinds without a namespace (the ones a deployment of this kind may hold).
const CLUSTER_SCOPED = new Set([
	'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass',
	'PriorityClass', 'RuntimeClass', 'CustomResourceDefinition', 'ValidatingAdmissionPolicy',
	'ValidatingAdmissionPolicyBinding', 'ValidatingWebhookConfiguration',
	'MutatingWebhookConfiguration', 'IngressClass', 'CSIDriver', 'APIService',
]);

// "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1.
function modelFor(apiVersion, kind) {
	if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
	if (!/^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
	if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
	let mod;
	try {
		mod = require(`kubernetes-models/${apiVersion}`);
	} catch (e) {
		return null;
	}
	const cls = mod[kind];
	if (typeof cls !== 'function' || cls.apiVersion !== apiVersion || cls.kind !== kind) return null;
	return cls;
}

function label(doc) {
	const name = doc && doc.metadata && doc.metadata.name;
	return `${(doc && doc.kind) || '?'}/${name || '?'}`;
}

function loadAll(files) {
	const docs = [];
	for (const file of files) {
		const rel = path.relative(process.cwd(), file) || file;
		let parsed;
		try {
			parsed = yaml.loadAll(fs.readFileSync(file, 'utf8'));
		} catch (e) {
			report(`${rel}: parses as YAML`, [String(e.message).split('\n')[0]]);
			continue;
		}
		parsed.forEach((doc, idx) => {
			if (doc === null || doc === undefined) return; // an empty document
			const desc = `${rel}: ${label(doc)}`;
			const problems = [];
			if (typeof doc !== 'object' || Array.isArray(doc)) {
				report(`${rel}: document ${idx + 1}`, ['not a mapping']);
				return;
			}
			const cls = modelFor(doc.apiVersion, doc.kind);
			if (!cls) {
				problems.push(`unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}: kubernetes-models has no such class`);
			} else {
				try {
					new cls(doc).validate();
				} catch (e) {
					const errs = e.errors || [];
					if (errs.length)
						for (const x of errs)
							problems.push(`${x.instancePath || '/'} ${x.message}${x.params && x.params.allowedValues ? ' ' + JSON.stringify(x.params.allowedValues) : ''}`);
					else problems.push(String(e.message));
				}
			}
			const md = doc.metadata || {};
			if (!md.name) problems.push('metadata.name is missing');
			if (CLUSTER_SCOPED.has(doc.kind)) {
				if (md.namespace) problems.push(`${doc.kind} is cluster-scoped but names namespace ${md.namespace}`);
			} else if (!md.namespace) {
				problems.push('metadata.namespace is missing (kubectl would put it in the current namespace)');
			}
			report(desc, problems);
			docs.push({ file: rel, doc });
		});
	}
	return docs;
}

// ---- helpers ---------------------------------------------------------------

function podSpecOf(doc) {
	const s = doc.spec || {};
	switch (doc.kind) {
	case 'Pod':
		return s;
	case 'Deployment':
	case 'StatefulSet':
	case 'DaemonSet':
	case 'ReplicaSet':
	case 'Job':
		return s.template && s.template.spec;
	case 'CronJob':
		return s.jobTemplate && s.jobTemplate.spec && s.jobTemplate.spec.template && s.jobTemplate.spec.template.spec;
	default:
		return null;
	}
}

function containersOf(pod) {
	return [...(pod.initContainers || []), ...(pod.containers || []), ...(pod.ephemeralContainers || [])];
}

function argvOf(c) {
	return [...(c.command || []), ...(c.args || [])].map(String);
}

// The udf-builder subcommand a container runs: the image's ENTRYPOINT is
// udf-builder, so it is args[0] without a command, or the word after a
// command ending in udf-builder.
function subcommandOf(c) {
	const cmd = c.command || [];
	if (cmd.length === 0) return c.args && c.args.length ? String(c.args[0]) : 'serve';
	if (/(^|\/)udf-builder$/.test(String(cmd[0]))) return String([...cmd.slice(1), ...(c.args || [])][0] || '');
	return null;
}

function optionValue(argv, name) {
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === name) return i + 1 < argv.length ? argv[i + 1] : null;
		if (argv[i].startsWith(name + '=')) return argv[i].slice(name.length + 1);
	}
	return undefined;
}

// The mount of a container holding PATH (longest mountPath prefix).
function mountFor(c, p) {
	let best = null;
	for (const m of c.volumeMounts || []) {
		const mp = m.mountPath.replace(/\/+$/, '');
		if ((p === mp || p.startsWith(mp + '/')) && (!best || mp.length > best.mountPath.replace(/\/+$/, '').length)) best = m;
	}
	return best;
}

function volumeOf(pod, name) {
	return (pod.volumes || []).find((v) => v.name === name);
}

function findDoc(docs, kind, ns, name) {
	return docs.find((d) => d.doc.kind === kind && d.doc.metadata.name === name && (!ns || d.doc.metadata.namespace === ns));
}

function secretKeys(doc) {
	return new Set([...Object.keys(doc.data || {}), ...Object.keys(doc.stringData || {})]);
}

function containerPort(c, port) {
	if (typeof port === 'number') return port;
	const p = (c.ports || []).find((x) => x.name === port);
	return p ? p.containerPort : undefined;
}

function portOf(addr) {
	const m = /:(\d+)$/.exec(String(addr || ''));
	return m ? Number(m[1]) : undefined;
}

// ---- policy: containers ------------------------------------------------------

function checkContainers(d, pod) {
	const problems = [];
	const psc = pod.securityContext || {};
	if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push('uses a host namespace');
	for (const v of pod.volumes || []) if (v.hostPath) problems.push(`volume ${v.name} is a hostPath`);
	for (const c of containersOf(pod)) {
		const sc = c.securityContext || {};
		const who = `container ${c.name}`;
		const nonRoot = sc.runAsNonRoot !== undefined ? sc.runAsNonRoot : psc.runAsNonRoot;
		if (nonRoot !== true) problems.push(`${who}: runAsNonRoot is not true`);
		const uid = sc.runAsUser !== undefined ? sc.runAsUser : psc.runAsUser;
		if (uid === 0) problems.push(`${who}: runAsUser is 0`);
		if (sc.readOnlyRootFilesystem !== true) problems.push(`${who}: readOnlyRootFilesystem is not true`);
		if (sc.allowPrivilegeEscalation !== false) problems.push(`${who}: allowPrivilegeEscalation is not false`);
		if (sc.privileged === true) problems.push(`${who}: privileged`);
		const caps = sc.capabilities || {};
		if (!(caps.drop || []).includes('ALL')) problems.push(`${who}: capabilities.drop does not hold ALL`);
		if ((caps.add || []).length) problems.push(`${who}: adds capabilities ${caps.add.join(', ')}`);
		const seccomp = (sc.seccompProfile || psc.seccompProfile || {}).type;
		if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${who}: seccompProfile is not RuntimeDefault or Localhost`);
		const res = c.resources || {};
		if (!res.requests || !res.requests.cpu || !res.requests.memory) problems.push(`${who}: no cpu and memory requests`);
		if (!res.limits || !res.limits.memory) problems.push(`${who}: no memory limit`);
		const tmp = mountFor(c, '/tmp');
		if (!tmp || tmp.readOnly || tmp.mountPath.replace(/\/+$/, '') !== '/tmp') problems.push(`${who}: no writable volume at /tmp`);
	}
	report(`${d.file}: ${label(d.doc)}: every container non-root, read-only root filesystem, no privilege escalation, drops ALL capabilities`, problems);
}

// Every ConfigMap, Secret, PVC and ServiceAccount a pod names exists.
function checkReferences(docs, d, pod) {
	const problems = [];
	const ns = d.doc.metadata.namespace;
	const need = (kind, name, keys, why) => {
		const t = findDoc(docs, kind, ns, name);
		if (!t) {
			problems.push(`${why}: ${kind} ${ns}/${name} is not among the documents`);
			return;
		}
		const have = kind === 'ConfigMap' ? new Set([...Object.keys(t.doc.data || {}), ...Object.keys(t.doc.binaryData || {})]) : secretKeys(t.doc);
		for (const k of keys || []) if (!have.has(k)) problems.push(`${why}: ${kind} ${name} has no key ${k}`);
	};
	if (pod.serviceAccountName) need('ServiceAccount', pod.serviceAccountName, [], 'serviceAccountName');
	for (const s of pod.imagePullSecrets || []) need('Secret', s.name, [], 'imagePullSecrets');
	for (const v of pod.volumes || []) {
		if (v.configMap && !v.configMap.optional) need('ConfigMap', v.configMap.name, (v.configMap.items || []).map((i) => i.key), `volume ${v.name}`);
		if (v.secret && !v.secret.optional) need('Secret', v.secret.secretName, (v.secret.items || []).map((i) => i.key), `volume ${v.name}`);
		if (v.persistentVolumeClaim) need('PersistentVolumeClaim', v.persistentVolumeClaim.claimName, [], `volume ${v.name}`);
	}
	for (const c of containersOf(pod)) {
		for (const e of c.env || []) {
			const vf = e.valueFrom || {};
			if (vf.secretKeyRef && !vf.secretKeyRef.optional) need('Secret', vf.secretKeyRef.name, [vf.secretKeyRef.key], `env ${e.name}`);
			if (vf.configMapKeyRef && !vf.configMapKeyRef.optional) need('ConfigMap', vf.configMapKeyRef.name, [vf.configMapKeyRef.key], `env ${e.name}`);
		}
		for (const e of c.envFrom || []) {
			if (e.secretRef && !e.secretRef.optional) need('Secret', e.secretRef.name, [], 'envFrom');
			if (e.configMapRef && !e.configMapRef.optional) need('ConfigMap', e.configMapRef.name, [], 'envFrom');
		}
		for (const m of c.volumeMounts || []) if (!volumeOf(pod, m.name)) problems.push(`container ${c.name}: mount of unknown volume ${m.name}`);
	}
	report(`${d.file}: ${label(d.doc)}: every ConfigMap, Secret, PVC and ServiceAccount it refers to is defined`, problems);
}

// ---- policy: the service -----------------------------------------------------

// The JSON config a `serve` container reads through --config, from its
// ConfigMap volume; null (with a problem) when it cannot be found.
function serveConfig(docs, d, pod, c, problems) {
	const file = optionValue(argvOf(c), '--config');
	if (!file) {
		problems.push(`container ${c.name}: serve without --config`);
		return null;
	}
	const m = mountFor(c, file);
	const v = m && volumeOf(pod, m.name);
	if (!v || !v.configMap) {
		problems.push(`--config ${file} is not on a ConfigMap volume`);
		return null;
	}
	const rel = m.subPath || path.posix.relative(m.mountPath, file);
	const item = (v.configMap.items || []).find((i) => i.path === rel);
	const key = item ? item.key : rel;
	const cm = findDoc(docs, 'ConfigMap', d.doc.metadata.namespace, v.configMap.name);
	const text = cm && cm.doc.data && cm.doc.data[key];
	if (typeof text !== 'string') {
		problems.push(`--config ${file}: ConfigMap ${v.configMap.name} has no key ${key}`);
		return null;
	}
	try {
		return { name: `${v.configMap.name}/${key}`, cfg: JSON.parse(text) };
	} catch (e) {
		problems.push(`ConfigMap ${v.configMap.name} key ${key} is not JSON: ${e.message}`);
		return null;
	}
}

const DIGEST_REF = /^docker:\/\/[^@\s]+@sha256:[0-9a-f]{64}$/;

function checkServe(docs, d, pod, c) {
	const problems = [];
	const spec = d.doc.spec || {};
	const replicas = spec.replicas === undefined ? 1 : spec.replicas;
	if (d.doc.kind !== 'Deployment') problems.push(`serve runs in a ${d.doc.kind}, not a Deployment`);
	if (!(replicas >= 2)) problems.push(`replicas is ${replicas}, want >= 2`);
	const probe = (p, want, what) => {
		const g = p && p.httpGet;
		if (!g) return problems.push(`${what}: no httpGet probe`);
		if (g.path !== want) problems.push(`${what}: path ${g.path}, want ${want}`);
		if (containerPort(c, g.port) !== 9090) problems.push(`${what}: port ${g.port}, want 9090 (the admin port)`);
	};
	probe(c.readinessProbe, '/readyz', 'readinessProbe');
	probe(c.livenessProbe, '/healthz', 'livenessProbe');
	const ports = (c.ports || []).map((p) => p.containerPort);
	for (const want of [50051, 9090]) if (!ports.includes(want)) problems.push(`container port ${want} is not declared`);
	const tok = (c.env || []).find((e) => e.name === 'UDFB_TOKEN_SECRETS');
	if (!tok || !(tok.valueFrom && tok.valueFrom.secretKeyRef)) problems.push('UDFB_TOKEN_SECRETS does not come from a Secret (secretKeyRef)');
	const got = serveConfig(docs, d, pod, c, problems);
	if (got) {
		const { name, cfg } = got;
		if (portOf(cfg.listen) !== 50051) problems.push(`${name}: listen ${cfg.listen}, want port 50051`);
		if (portOf(cfg.admin_listen) !== 9090) problems.push(`${name}: admin_listen ${cfg.admin_listen}, want port 9090 (the probes')`);
		if (!/^0\.0\.0\.0:|^\[::\]:/.test(String(cfg.listen || ''))) problems.push(`${name}: listen ${cfg.listen} is not reachable from outside the pod`);
		const store = cfg.store;
		const sm = typeof store === 'string' ? mountFor(c, store) : null;
		if (!sm || sm.readOnly) problems.push(`${name}: store ${store} is not on a writable volume of the container`);
		const bases = cfg.base_images || {};
		if (!Object.keys(bases).length) problems.push(`${name}: no base_images`);
		for (const [rt, ref] of Object.entries(bases))
			if (!DIGEST_REF.test(ref)) problems.push(`${name}: base_images.${rt} ${ref} is not a registry reference pinned by digest`);
		if (!/^docker:\/\/[^@\s]+$/.test(String(cfg.dest || ''))) problems.push(`${name}: dest ${cfg.dest} is not a registry repository (docker://HOST/REPO)`);
		if (!cfg.scheduler) problems.push(`${name}: no scheduler`);
		if ('token_secrets' in cfg) problems.push(`${name}: token_secrets in a ConfigMap; they belong in a Secret`);
		const grace = (pod.terminationGracePeriodSeconds === undefined ? 30 : pod.terminationGracePeriodSeconds) * 1000;
		if ((cfg.grace_ms === undefined ? 10000 : cfg.grace_ms) >= grace) problems.push(`${name}: grace_ms ${cfg.grace_ms} is not below terminationGracePeriodSeconds`);
	}
	report(`${d.file}: ${label(d.doc)}: serve with >= 2 replicas, readiness /readyz and liveness /healthz on 9090, its config consistent`, problems);

	// A Service in front of it on 50051.
	const svcProblems = [];
	const podLabels = (spec.template && spec.template.metadata && spec.template.metadata.labels) || {};
	const svcs = docs.filter((x) => x.doc.kind === 'Service' && x.doc.metadata.namespace === d.doc.metadata.namespace);
	const selecting = svcs.filter((x) => {
		const sel = (x.doc.spec && x.doc.spec.selector) || {};
		return Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => podLabels[k] === v);
	});
	const grpc = selecting.find((x) => ((x.doc.spec && x.doc.spec.ports) || []).some((p) => p.port === 50051 && containerPort(c, p.targetPort === undefined ? p.port : p.targetPort) === 50051));
	if (!grpc) svcProblems.push('no Service selects its pods with port 50051 -> container port 50051');
	else if ((grpc.doc.spec.type || 'ClusterIP') !== 'ClusterIP') svcProblems.push(`Service ${grpc.doc.metadata.name} is ${grpc.doc.spec.type}, want ClusterIP`);
	report(`${d.file}: ${label(d.doc)}: a ClusterIP Service exposes gRPC on 50051`, svcProblems);

	checkRbac(docs, d, pod);
	return got && got.cfg;
}

// What the kubernetes scheduler backend does (docs/security.md, 10-rbac.yaml).
const NEEDED_RBAC = [
	['', 'namespaces', ['get', 'create', 'patch']],
	['apps', 'deployments', ['get', 'create', 'patch', 'delete']],
	['', 'services', ['get', 'create', 'patch', 'delete']],
	['networking.k8s.io', 'networkpolicies', ['get', 'create', 'patch', 'delete']],
	['', 'pods', ['get']],
	// The worker registry (a ConfigMap per worker: listed across namespaces,
	// created, updated with a resourceVersion, deleted) and a worker's
	// HorizontalPodAutoscaler (max_cluster_count).
	['', 'configmaps', ['get', 'list', 'create', 'update', 'delete']],
	['autoscaling', 'horizontalpodautoscalers', ['get', 'create', 'patch', 'delete']],
];

function checkRbac(docs, d, pod) {
	const problems = [];
	const ns = d.doc.metadata.namespace;
	const sa = pod.serviceAccountName;
	if (!sa || sa === 'default') {
		problems.push('the pod has no ServiceAccount of its own');
	} else {
		if (pod.automountServiceAccountToken === false) problems.push('automountServiceAccountToken is false: the scheduler backend needs its token');
		const rules = [];
		for (const b of docs.filter((x) => x.doc.kind === 'ClusterRoleBinding' || x.doc.kind === 'RoleBinding')) {
			const bound = (b.doc.subjects || []).some((s) => s.kind === 'ServiceAccount' && s.name === sa && (s.namespace || b.doc.metadata.namespace) === ns);
			if (!bound) continue;
			if (b.doc.kind === 'RoleBinding') {
				problems.push(`RoleBinding ${b.doc.metadata.name} grants only its namespace; tenant namespaces are created at run time (ClusterRoleBinding)`);
				continue;
			}
			const role = findDoc(docs, b.doc.roleRef.kind, null, b.doc.roleRef.name);
			if (!role) problems.push(`${b.doc.roleRef.kind} ${b.doc.roleRef.name} (bound by ${b.doc.metadata.name}) is not among the documents`);
			else rules.push(...(role.doc.rules || []));
		}
		const allows = (group, resource, verb) => rules.some((r) => (r.apiGroups || []).some((g) => g === group || g === '*') && (r.resources || []).some((x) => x === resource || x === '*') && (r.verbs || []).some((v) => v === verb || v === '*'));
		for (const [group, resource, verbs] of NEEDED_RBAC)
			for (const verb of verbs)
				if (!allows(group, resource, verb)) problems.push(`ServiceAccount ${sa} may not ${verb} ${group ? group + '/' : ''}${resource} cluster-wide`);
	}
	report(`${d.file}: ${label(d.doc)}: its ServiceAccount has the kubernetes scheduler backend's RBAC`, problems);
}

// ---- policy: the prebuild Job ------------------------------------------------

function checkPrebuild(docs, d, pod, c, serveCfgs) {
	const problems = [];
	const spec = d.doc.spec || {};
	if (d.doc.kind !== 'Job') problems.push(`prebuild runs in a ${d.doc.kind}, not a Job`);
	if (spec.completionMode !== 'Indexed') problems.push(`completionMode is ${spec.completionMode}, want Indexed`);
	if (!Number.isInteger(spec.completions) || spec.completions < 1) problems.push('completions is not set');
	if (spec.parallelism !== spec.completions) problems.push(`parallelism ${spec.parallelism} differs from completions ${spec.completions}`);
	const argv = argvOf(c);
	const shard = optionValue(argv, '--shard');
	const want = `$(JOB_COMPLETION_INDEX)/${spec.completions}`;
	if (shard !== want) problems.push(`--shard is ${shard === undefined ? 'missing' : shard}, want ${want}`);
	const rep = optionValue(argv, '--report');
	const rm = rep ? mountFor(c, rep) : null;
	if (!rep) problems.push('no --report');
	else if (!rm || rm.readOnly) problems.push(`--report ${rep} is not on a writable volume`);
	else if (!rep.includes('$(JOB_COMPLETION_INDEX)')) problems.push(`--report ${rep}: every shard would write the same file`);
	// INPUT...: the words after "prebuild" that are not options or their values.
	const withValue = new Set(['--base', '--dest', '--store', '-j', '--jobs', '--report', '--shard', '--salt', '--platform', '--imports-allow']);
	const sub = argv.indexOf('prebuild');
	const inputs = [];
	for (let i = sub + 1; i < argv.length; i++) {
		if (withValue.has(argv[i])) i++;
		else if (!argv[i].startsWith('-')) inputs.push(argv[i]);
	}
	if (!inputs.length) problems.push('no INPUT');
	for (const p of inputs) {
		const m = mountFor(c, p);
		const v = m && volumeOf(pod, m.name);
		if (!v) problems.push(`input ${p} is not on a mounted volume`);
		else if (v.emptyDir) problems.push(`input ${p} is on an emptyDir, which starts empty`);
	}
	const store = optionValue(argv, '--store');
	const envStore = ((c.env || []).find((e) => e.name === 'UDFB_STORE') || {}).value;
	const st = store || envStore;
	if (!st) problems.push('no --store (the default is under the read-only root filesystem)');
	else if (!mountFor(c, st) || mountFor(c, st).readOnly) problems.push(`store ${st} is not on a writable volume`);
	// The service's cache is what it warms: same base, same destination.
	const base = optionValue(argv, '--base');
	const dest = optionValue(argv, '--dest');
	if (!base || !DIGEST_REF.test(base)) problems.push(`--base ${base} is not a registry reference pinned by digest`);
	for (const cfg of serveCfgs) {
		if (!Object.values(cfg.base_images || {}).includes(base)) problems.push(`--base ${base} is none of the service's base_images`);
		if (cfg.dest !== dest) problems.push(`--dest ${dest} differs from the service's dest ${cfg.dest}`);
	}
	if (!['Never', 'OnFailure'].includes(pod.restartPolicy)) problems.push(`restartPolicy ${pod.restartPolicy}`);
	report(`${d.file}: ${label(d.doc)}: Indexed, completions == parallelism, --shard $(JOB_COMPLETION_INDEX)/${spec.completions}, --report on a volume`, problems);
}

// ---- main ----------------------------------------------------------------------

function ipv4(s) {
	const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
	return m ? ((+m[1] << 24) >>> 0) + (+m[2] << 16) + (+m[3] << 8) + +m[4] : null;
}

function cidrHas(cidr, addr) {
	const [net, bits] = cidr.split('/');
	const n = ipv4(net);
	if (n === null) return false;
	const b = bits === undefined ? 32 : +bits;
	const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
	return ((n & mask) >>> 0) === ((addr & mask) >>> 0);
}

function mainSandbox(args) {
	const docs = loadAll(expandArgs(args));
	const META = ipv4('169.254.169.254');
	for (const d of docs) {
		const doc = d.doc;
		const problems = [];
		if (doc.kind === 'Namespace') {
			const l = (doc.metadata && doc.metadata.labels) || {};
			if (!/^udf-[a-z0-9-]+$/.test(doc.metadata.name)) problems.push('name is not udf-<label>');
			if (l['pod-security.kubernetes.io/enforce'] !== 'restricted') problems.push('does not enforce the restricted Pod Security level');
			report(`${d.file}: ${label(doc)}: sandbox namespace`, problems);
		}
		const pod = podSpecOf(doc);
		if (pod) {
			checkContainers(d, pod);
			if (!pod.runtimeClassName) problems.push('no runtimeClassName');
			for (const c of containersOf(pod)) {
				const g = (c.readinessProbe || {}).httpGet || {};
				if (g.path !== '/health' || g.port !== 8080) problems.push(`container ${c.name}: readiness is not GET /health on 8080`);
				if (!/@sha256:[0-9a-f]{64}$/.test(c.image || '')) problems.push(`container ${c.name}: image not pinned by digest`);
			}
			report(`${d.file}: ${label(doc)}: runtimeClassName, readiness /health:8080, image by digest`, problems);
		}
		if (doc.kind === 'NetworkPolicy') {
			const spec = doc.spec || {};
			if (!(spec.policyTypes || []).includes('Egress') || !(spec.policyTypes || []).includes('Ingress')) problems.push('policyTypes lacks Ingress or Egress');
			for (const r of spec.egress || []) {
				if (!r.to || !r.to.length) problems.push('an egress rule open to everything');
				for (const peer of r.to || []) {
					const b = peer.ipBlock;
					if (b && cidrHas(b.cidr, META) && !(b.except || []).some((e) => cidrHas(e, META)))
						problems.push(`egress to ${b.cidr} includes 169.254.169.254`);
				}
			}
			for (const r of spec.ingress || []) if (!r.from || !r.from.length) problems.push('an ingress rule open to everything');
			report(`${d.file}: ${label(doc)}: egress never open to 169.254.169.254, ingress restricted`, problems);
		}
	}
	console.log(`1..${n}`);
	if (failures) console.log(`# ${failures} of ${n} failed`);
	process.exit(failures ? 1 : 0);
}

function main() {
	let args = process.argv.slice(2);
	if (args[0] === '--sandbox') return mainSandbox(args.slice(1));
	if (!args.length) {
		console.error('usage: node validate.js FILE.yaml|DIR ...');
		process.exit(2);
	}
	const docs = loadAll(expandArgs(args));
	const workloads = docs.filter((d) => podSpecOf(d.doc));
	const serveCfgs = [];
	const prebuilds = [];
	let serves = 0;
	for (const d of workloads) {
		const pod = podSpecOf(d.doc);
		checkContainers(d, pod);
		checkReferences(docs, d, pod);
		for (const c of pod.containers || []) {
			const sub = subcommandOf(c);
			if (sub === 'serve') {
				serves++;
				const cfg = checkServe(docs, d, pod, c);
				if (cfg) serveCfgs.push(cfg);
			} else if (sub === 'prebuild') {
				prebuilds.push([d, pod, c]);
			}
		}
	}
	for (const [d, pod, c] of prebuilds) checkPrebuild(docs, d, pod, c, serveCfgs);
	report('the documents hold a Deployment running udf-builder serve', serves ? [] : ['none found']);
	report('the documents hold a Job running udf-builder prebuild', prebuilds.length ? [] : ['none found']);
	console.log(`1..${n}`);
	if (failures) console.log(`# ${failures} of ${n} failed`);
	process.exit(failures ? 1 : 0);
}

main();
