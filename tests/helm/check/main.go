// Command check verifies the manifests rendered from wsgate's chart for one value set:
// every document parses, the exact set of objects expected is there, and the
// deployment invariants hold when read from the manifests themselves (not from the
// values): probes, drain fits in the grace period, node id from the pod name, secrets
// only through secretKeyRef, PDBs, HPA, spreading, selectors that select something.
//
//	check -manifests rendered.yaml -expect expect.yaml
//
// Prints one line per check ("ok ..." or "FAIL ...") and exits 1 if any failed.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// expectation is what one value set must render to; see tests/helm/expect/*.yaml.
type expectation struct {
	Objects         []string `yaml:"objects"`
	GatewayReplicas int      `yaml:"gatewayReplicas"`
	RouterReplicas  int      `yaml:"routerReplicas"`
	JWTSecret       struct {
		Name     string `yaml:"name"`
		Key      string `yaml:"key"`
		Rendered bool   `yaml:"rendered"`
	} `yaml:"jwtSecret"`
	// With a public key: the Secret and key mounted as WSGATE_JWT_PUBLIC_KEY_FILE (and no
	// HS256 secret); jwksUrl: WSGATE_JWT_JWKS_URL from the ConfigMap (and no HS256 secret).
	JWTPublicKey struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"jwtPublicKey"`
	JWKSURL string `yaml:"jwksUrl"`
	// WSGATE_TRUSTED_PROXIES in the gateway's ConfigMap ("": not set, nobody's headers believed).
	TrustedProxies string `yaml:"trustedProxies"`
	RedisURLSecret struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"redisUrlSecret"`
	// Redis behind Sentinel: the router's WSGATE_REDIS_SENTINELS and WSGATE_REDIS_MASTER_NAME
	// from its ConfigMap ("": neither set), and the Secret of the sentinels' password.
	RedisSentinels   string `yaml:"redisSentinels"`
	// WSGATE_REDIS_SHARDS from the router's ConfigMap ("": unset)
	RedisShards string `yaml:"redisShards"`
	RedisMasterName  string `yaml:"redisMasterName"`
	SentinelPassword struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"sentinelPassword"`
	SecretValues []string `yaml:"secretValues"`
	// The Secret holding the NATS passwords (gateway-password, router-password).
	NATSSecret struct {
		Name     string `yaml:"name"`
		Rendered bool   `yaml:"rendered"`
	} `yaml:"natsSecret"`
	// Whether the release runs its own development NATS with the shipped authorization.
	DevNATS bool `yaml:"devNats"`
	// The Secret and key of the routers' WSGATE_API_KEY; no name: the HTTP API is off (no key).
	APIKey struct {
		Name     string `yaml:"name"`
		Key      string `yaml:"key"`
		Rendered bool   `yaml:"rendered"`
	} `yaml:"apiKey"`
}

// shippedNATSConf is deploy/nats/nats.conf (-nats-conf), which a development NATS must run.
var shippedNATSConf string

type object struct {
	m    map[string]interface{}
	text string // the document as rendered, for leak searches
}

func (o object) kind() string { return str(o.m, "kind") }
func (o object) name() string { return str(o.m, "metadata", "name") }
func (o object) id() string   { return o.kind() + "/" + o.name() }

type checker struct {
	failed, passed int
}

func (c *checker) check(desc string, err error) {
	if err != nil {
		c.failed++
		fmt.Printf("FAIL %s: %v\n", desc, err)
		return
	}
	c.passed++
	fmt.Printf("ok   %s\n", desc)
}

func main() {
	manifests := flag.String("manifests", "", "rendered manifests (multi-document YAML)")
	expectFile := flag.String("expect", "", "expectations of this value set")
	natsConf := flag.String("nats-conf", "", "deploy/nats/nats.conf, the authorization a development NATS must run")
	flag.Parse()
	if *manifests == "" || *expectFile == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: check -manifests FILE -expect FILE")
		os.Exit(2)
	}
	if *natsConf != "" {
		b, err := os.ReadFile(*natsConf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "check: %v\n", err)
			os.Exit(2)
		}
		shippedNATSConf = string(b)
	}
	var exp expectation
	raw, err := os.ReadFile(*expectFile)
	if err == nil {
		err = yaml.Unmarshal(raw, &exp)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "check: %s: %v\n", *expectFile, err)
		os.Exit(2)
	}
	text, err := os.ReadFile(*manifests)
	if err != nil {
		fmt.Fprintf(os.Stderr, "check: %v\n", err)
		os.Exit(2)
	}

	c := &checker{}
	objs, err := parseAll(text)
	c.check(fmt.Sprintf("every document parses as YAML and has apiVersion, kind, metadata.name (%d objects)", len(objs)), err)
	if err == nil {
		checkAll(c, objs, &exp)
	}
	fmt.Printf("%d passed, %d failed\n", c.passed, c.failed)
	if c.failed > 0 {
		os.Exit(1)
	}
}

func parseAll(text []byte) ([]object, error) {
	var objs []object
	for i, doc := range splitDocs(string(text)) {
		var m map[string]interface{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if m == nil {
			continue // a document of comments only
		}
		o := object{m: m, text: doc}
		if str(m, "apiVersion") == "" || o.kind() == "" || o.name() == "" {
			return nil, fmt.Errorf("document %d lacks apiVersion, kind or metadata.name", i+1)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		return nil, errors.New("no objects rendered")
	}
	return objs, nil
}

// splitDocs cuts at "---" lines as YAML does, dropping the empty head before the first.
func splitDocs(s string) []string {
	var docs []string
	var cur strings.Builder
	started := false
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			if started {
				docs = append(docs, cur.String())
			}
			cur.Reset()
			started = true
			continue
		}
		cur.WriteString(line)
		if !started && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
			started = true
		}
	}
	if started {
		docs = append(docs, cur.String())
	}
	return docs
}

func checkAll(c *checker, objs []object, exp *expectation) {
	byID := map[string]object{}
	var dups []string
	for _, o := range objs {
		if _, seen := byID[o.id()]; seen {
			dups = append(dups, o.id())
		}
		byID[o.id()] = o
	}
	c.check("object names are unique per kind", none("duplicates", dups))
	c.check("exactly the expected objects are rendered", sameSet(keys(byID), exp.Objects))

	gw, gwErr := deployment(objs, "gateway")
	rt, rtErr := deployment(objs, "router")
	c.check("one gateway Deployment", gwErr)
	c.check("one router Deployment", rtErr)
	if gwErr != nil || rtErr != nil {
		return
	}
	for _, d := range []object{gw, rt} {
		comp := str(d.m, "metadata", "labels", "app.kubernetes.io/component")
		c.check(comp+": selector matches its pod template labels",
			selects(mapAt(d.m, "spec", "selector", "matchLabels"), podLabels(d)))
		c.check(comp+": liveness probe is GET /health on a declared port", probe(d, "livenessProbe", "/health"))
		c.check(comp+": readiness probe is GET /ready on a declared port", probe(d, "readinessProbe", "/ready"))
		c.check(comp+": WSGATE_NODE_ID comes from metadata.name (downward API)", nodeIDFromPodName(d))
		c.check(comp+": config comes from a rendered ConfigMap (envFrom)", configFrom(d, byID))
		c.check(comp+": pods are spread (anti-affinity or topology spread selecting its own pods)", spread(d))
		c.check(comp+": a PodDisruptionBudget covers it when it has several pods, and lets one go", disruptionBudget(d, objs))
		c.check(comp+": no secret-like variable has a literal value", noLiteralSecrets(d))
	}
	c.check("gateway: terminationGracePeriodSeconds > drain + preStop sleep", graceCoversDrain(gw, byID))
	c.check("gateway: WSGATE_JWT_SECRET from the expected Secret via secretKeyRef, or the expected public key / JWKS URL", jwtSecret(gw, byID, exp))
	c.check("gateway: WSGATE_TRUSTED_PROXIES as expected, and no range exempt from the per-IP limit", trustedProxies(gw, byID, exp))
	c.check("router: WSGATE_API_KEY from the expected Secret via secretKeyRef, or none with the API off", apiKey(rt, byID, exp))
	c.check("router: WSGATE_REDIS_URL from the ConfigMap without a password, or from the expected Secret", redisURL(rt, byID, exp))
	c.check("router: the Redis sentinels, master name and history shards from the ConfigMap, the sentinels' password from the expected Secret", redisSentinel(rt, byID, exp))
	c.check("gateway: NATS user from the ConfigMap, its password from the expected Secret", natsCreds(gw, byID, exp, "gateway"))
	c.check("router: NATS user from the ConfigMap, its password from the expected Secret", natsCreds(rt, byID, exp, "router"))
	c.check("the development NATS, if any, runs deploy/nats/nats.conf with the release's prefix and the Secret's passwords", devNATS(objs, byID, gw, exp))
	c.check(fmt.Sprintf("router: %d replicas", exp.RouterReplicas), replicas(rt, exp.RouterReplicas))
	c.check("gateway: replicas fixed, or owned by an HPA that targets it", gatewayScaling(gw, objs, exp))
	c.check("gateway and router get the same channel namespaces (JSON when set)", sameNamespaces(gw, rt, byID))
	c.check("ConfigMaps hold no secret setting", configMapsClean(objs))
	c.check("secret values appear in no object but a Secret, plain or base64", noLeaks(objs, exp.SecretValues))
	c.check("every Service selects a rendered Deployment's pods and targets a declared port", services(objs))
	c.check("gateway: WSGATE_ADMIN_LISTEN is its declared admin port, and only the scrape Service reaches it", adminPort(gw, objs, byID))
	c.check("every Ingress routes to a rendered Service port, with WebSocket-length timeouts", ingresses(objs, byID))
	c.check("router: its HTTP port (/api, /console/) only on ClusterIP Services, never behind an Ingress", routerPrivate(rt, objs, byID))
	c.check("every ServiceMonitor selects the gateway and router Services on a declared port", serviceMonitors(objs))
}

// ---- invariants ----

// Gateways refuse what routers accept (and the reverse) when their namespaces differ, so the
// chart must give both one value, a JSON object.
func sameNamespaces(gw, rt object, byID map[string]object) error {
	g, gErr := setting(gw, byID, "WSGATE_CHANNEL_NAMESPACES")
	r, rErr := setting(rt, byID, "WSGATE_CHANNEL_NAMESPACES")
	if gErr != nil && rErr != nil {
		return nil // unset for both: one default namespace
	}
	if gErr != nil || rErr != nil || g != r {
		return fmt.Errorf("gateway %q, router %q", g, r)
	}
	var v map[string]interface{}
	if err := json.Unmarshal([]byte(g), &v); err != nil {
		return fmt.Errorf("WSGATE_CHANNEL_NAMESPACES is not a JSON object: %v", err)
	}
	return nil
}

func probe(d object, which, path string) error {
	ctr := mainContainer(d)
	p := mapAt(ctr, which, "httpGet")
	if p == nil {
		return fmt.Errorf("no %s.httpGet", which)
	}
	if got := str(p, "path"); got != path {
		return fmt.Errorf("%s path %q", which, got)
	}
	return portDeclared(ctr, p["port"])
}

func nodeIDFromPodName(d object) error {
	e := envVar(mainContainer(d), "WSGATE_NODE_ID")
	if e == nil {
		return errors.New("WSGATE_NODE_ID not set")
	}
	if got := str(e, "valueFrom", "fieldRef", "fieldPath"); got != "metadata.name" {
		return fmt.Errorf("valueFrom.fieldRef.fieldPath is %q", got)
	}
	return nil
}

func configFrom(d object, byID map[string]object) error {
	for _, ef := range list(mainContainer(d), "envFrom") {
		name := str(asMap(ef), "configMapRef", "name")
		if name == "" {
			continue
		}
		if _, ok := byID["ConfigMap/"+name]; !ok {
			return fmt.Errorf("envFrom names ConfigMap %q, which is not rendered", name)
		}
		return nil
	}
	return errors.New("no envFrom configMapRef")
}

func spread(d object) error {
	labels := podLabels(d)
	spec := mapAt(d.m, "spec", "template", "spec")
	aa := mapAt(spec, "affinity", "podAntiAffinity")
	var selectors []map[string]interface{}
	for _, t := range list(aa, "requiredDuringSchedulingIgnoredDuringExecution") {
		selectors = append(selectors, mapAt(asMap(t), "labelSelector", "matchLabels"))
	}
	for _, t := range list(aa, "preferredDuringSchedulingIgnoredDuringExecution") {
		selectors = append(selectors, mapAt(asMap(t), "podAffinityTerm", "labelSelector", "matchLabels"))
	}
	for _, t := range list(spec, "topologySpreadConstraints") {
		selectors = append(selectors, mapAt(asMap(t), "labelSelector", "matchLabels"))
	}
	if len(selectors) == 0 {
		return errors.New("no podAntiAffinity term and no topologySpreadConstraints")
	}
	for _, s := range selectors {
		if err := selects(s, labels); err != nil {
			return fmt.Errorf("a spreading term does not select the Deployment's own pods: %v", err)
		}
	}
	return nil
}

func disruptionBudget(d object, objs []object) error {
	labels := podLabels(d)
	// An HPA-owned Deployment has no replicas field; it then runs at least two (gatewayScaling).
	replicas, fixed := mapAt(d.m, "spec")["replicas"].(int)
	for _, o := range objs {
		if o.kind() != "PodDisruptionBudget" || selects(mapAt(o.m, "spec", "selector", "matchLabels"), labels) != nil {
			continue
		}
		spec := mapAt(o.m, "spec")
		if max, ok := spec["maxUnavailable"].(int); ok && max < 1 {
			return fmt.Errorf("%s: maxUnavailable %d blocks every eviction", o.id(), max)
		}
		if min, ok := spec["minAvailable"].(int); ok && fixed && min >= replicas {
			return fmt.Errorf("%s: minAvailable %d with %d replicas blocks every eviction", o.id(), min, replicas)
		}
		if spec["maxUnavailable"] == nil && spec["minAvailable"] == nil {
			return fmt.Errorf("%s sets neither minAvailable nor maxUnavailable", o.id())
		}
		return nil
	}
	if fixed && replicas < 2 {
		return nil
	}
	return fmt.Errorf("no PodDisruptionBudget selects %s's pods", d.name())
}

func noLiteralSecrets(d object) error {
	for _, e := range list(mainContainer(d), "env") {
		m := asMap(e)
		n := str(m, "name")
		if (strings.Contains(n, "SECRET") || strings.Contains(n, "PASSWORD") || strings.Contains(n, "API_KEY") || n == "WSGATE_REDIS_URL") && m["value"] != nil {
			return fmt.Errorf("%s has a literal value", n)
		}
	}
	return nil
}

func graceCoversDrain(gw object, byID map[string]object) error {
	ctr := mainContainer(gw)
	drainText, err := setting(gw, byID, "WSGATE_DRAIN_SECONDS")
	if err != nil {
		return err
	}
	drain, err := parseSeconds(drainText)
	if err != nil {
		return fmt.Errorf("WSGATE_DRAIN_SECONDS: %v", err)
	}
	cmd := list(ctr, "lifecycle", "preStop", "exec", "command")
	if len(cmd) != 2 || cmd[0] != "sleep" {
		return fmt.Errorf("preStop is not [sleep N]: %v", cmd)
	}
	sleep, err := parseSeconds(fmt.Sprint(cmd[1]))
	if err != nil {
		return fmt.Errorf("preStop sleep: %v", err)
	}
	grace, ok := mapAt(gw.m, "spec", "template", "spec")["terminationGracePeriodSeconds"].(int)
	if !ok {
		return errors.New("terminationGracePeriodSeconds not set")
	}
	if float64(grace) <= drain+sleep {
		return fmt.Errorf("grace %ds <= drain %gs + preStop %gs", grace, drain, sleep)
	}
	fmt.Printf("     (grace %ds > drain %gs + preStop %gs)\n", grace, drain, sleep)
	return nil
}

func jwtSecret(gw object, byID map[string]object, exp *expectation) error {
	auth, err := setting(gw, byID, "WSGATE_AUTH")
	if err != nil {
		return err
	}
	e := envVar(mainContainer(gw), "WSGATE_JWT_SECRET")
	if auth == "none" {
		if e != nil || exp.JWTSecret.Name != "" {
			return errors.New("WSGATE_AUTH=none but a JWT secret is set or expected")
		}
		return nil
	}
	if auth != "jwt" {
		return fmt.Errorf("WSGATE_AUTH is %q", auth)
	}
	if exp.JWTPublicKey.Name != "" || exp.JWKSURL != "" {
		if e != nil {
			return errors.New("WSGATE_JWT_SECRET is set although a public key or a JWKS URL verifies tokens")
		}
		return jwtPublicKeys(gw, byID, exp)
	}
	if e == nil {
		return errors.New("WSGATE_AUTH=jwt but WSGATE_JWT_SECRET is not set")
	}
	return secretRef(e, byID, exp.JWTSecret.Name, exp.JWTSecret.Key, exp.JWTSecret.Rendered)
}

// The per-IP limit must count real clients: the proxies in front are trusted (so their
// X-Forwarded-For names the client) and no address range is exempt from the limit.
func trustedProxies(gw object, byID map[string]object, exp *expectation) error {
	if v, err := setting(gw, byID, "WSGATE_IP_ALLOWLIST"); err == nil {
		return fmt.Errorf("WSGATE_IP_ALLOWLIST is %q: those clients escape the per-IP limit", v)
	}
	v, err := setting(gw, byID, "WSGATE_TRUSTED_PROXIES")
	if exp.TrustedProxies == "" {
		if err == nil {
			return fmt.Errorf("WSGATE_TRUSTED_PROXIES is %q, expected it unset", v)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if v != exp.TrustedProxies {
		return fmt.Errorf("WSGATE_TRUSTED_PROXIES is %q, expected %q", v, exp.TrustedProxies)
	}
	return nil
}

// The public key file is the expected Secret's key, mounted read-only where
// WSGATE_JWT_PUBLIC_KEY_FILE points; the JWKS URL is the expected one.
func jwtPublicKeys(gw object, byID map[string]object, exp *expectation) error {
	if exp.JWKSURL != "" {
		url, err := setting(gw, byID, "WSGATE_JWT_JWKS_URL")
		if err != nil {
			return err
		}
		if url != exp.JWKSURL {
			return fmt.Errorf("WSGATE_JWT_JWKS_URL is %q, expected %q", url, exp.JWKSURL)
		}
	}
	if exp.JWTPublicKey.Name == "" {
		return nil
	}
	file, err := setting(gw, byID, "WSGATE_JWT_PUBLIC_KEY_FILE")
	if err != nil {
		return err
	}
	dir, base := file[:strings.LastIndex(file, "/")+1], file[strings.LastIndex(file, "/")+1:]
	for _, m := range list(mainContainer(gw), "volumeMounts") {
		mm := asMap(m)
		if strings.TrimSuffix(str(mm, "mountPath"), "/")+"/" != dir {
			continue
		}
		if ro, _ := mm["readOnly"].(bool); !ro {
			return fmt.Errorf("the public key's mount %s is not read-only", dir)
		}
		for _, v := range list(gw.m, "spec", "template", "spec", "volumes") {
			vm := asMap(v)
			if str(vm, "name") != str(mm, "name") {
				continue
			}
			if got := str(vm, "secret", "secretName"); got != exp.JWTPublicKey.Name {
				return fmt.Errorf("the public key comes from Secret %q, expected %q", got, exp.JWTPublicKey.Name)
			}
			for _, it := range list(vm, "secret", "items") {
				if str(asMap(it), "key") == exp.JWTPublicKey.Key && str(asMap(it), "path") == base {
					fmt.Printf("     (public key %s from Secret %s key %s)\n", file, exp.JWTPublicKey.Name, exp.JWTPublicKey.Key)
					return nil
				}
			}
			return fmt.Errorf("Secret %s's key %s is not mounted as %s", exp.JWTPublicKey.Name, exp.JWTPublicKey.Key, file)
		}
		return fmt.Errorf("volume %q of the mount %s is not declared", str(mm, "name"), dir)
	}
	return fmt.Errorf("nothing is mounted at %s (WSGATE_JWT_PUBLIC_KEY_FILE=%s)", dir, file)
}

// The routers serve the HTTP API on their non-loopback listener only with a key, which must
// reach them from a Secret (never the ConfigMap, where configMapsClean looks).
func apiKey(rt object, byID map[string]object, exp *expectation) error {
	e := envVar(mainContainer(rt), "WSGATE_API_KEY")
	if _, err := setting(rt, byID, "WSGATE_API_KEY"); err == nil && e == nil {
		return errors.New("WSGATE_API_KEY comes from the ConfigMap")
	}
	if exp.APIKey.Name == "" {
		if e != nil {
			return errors.New("the API is expected off, but WSGATE_API_KEY is set")
		}
		return nil
	}
	if e == nil {
		return errors.New("WSGATE_API_KEY is not set: the routers would not serve the API")
	}
	return secretRef(e, byID, exp.APIKey.Name, exp.APIKey.Key, exp.APIKey.Rendered)
}

func natsCreds(d object, byID map[string]object, exp *expectation, role string) error {
	user, err := setting(d, byID, "WSGATE_NATS_USER")
	if err != nil {
		return err
	}
	if user != role {
		return fmt.Errorf("WSGATE_NATS_USER is %q, expected %q", user, role)
	}
	e := envVar(mainContainer(d), "WSGATE_NATS_PASSWORD")
	if e == nil {
		return errors.New("WSGATE_NATS_PASSWORD is not set")
	}
	return secretRef(e, byID, exp.NATSSecret.Name, role+"-password", exp.NATSSecret.Rendered)
}

func devNATS(objs []object, byID map[string]object, gw object, exp *expectation) error {
	var nats []object
	for _, o := range objs {
		if o.kind() == "Deployment" && str(o.m, "metadata", "labels", "app.kubernetes.io/component") == "nats" {
			nats = append(nats, o)
		}
	}
	if !exp.DevNATS {
		return none("development NATS Deployments", func() []string {
			var ids []string
			for _, o := range nats {
				ids = append(ids, o.id())
			}
			return ids
		}())
	}
	if len(nats) != 1 {
		return fmt.Errorf("expected one development NATS Deployment, found %d", len(nats))
	}
	if shippedNATSConf == "" {
		return errors.New("run with -nats-conf deploy/nats/nats.conf")
	}
	d := nats[0]
	ctr := mainContainer(d)
	cmd := fmt.Sprint(ctr["command"])
	if !strings.Contains(cmd, "-c") {
		return fmt.Errorf("nats-server runs without a config file: command %s", cmd)
	}
	var conf string
	for _, v := range list(d.m, "spec", "template", "spec", "volumes") {
		cm, ok := byID["ConfigMap/"+str(asMap(v), "configMap", "name")]
		if ok {
			conf, _ = mapAt(cm.m, "data")["wsgate.conf"].(string)
		}
	}
	prefix, err := setting(gw, byID, "WSGATE_PREFIX")
	if err != nil {
		return err
	}
	want := strings.ReplaceAll(shippedNATSConf, "\"wsgate.", "\""+prefix+".")
	if strings.TrimSpace(conf) != strings.TrimSpace(want) {
		return errors.New("its mounted wsgate.conf is not deploy/nats/nats.conf with the release's prefix")
	}
	for _, role := range []string{"gateway", "router", "service"} {
		e := envVar(ctr, "WSGATE_NATS_"+strings.ToUpper(role)+"_PASSWORD")
		if e == nil {
			return fmt.Errorf("WSGATE_NATS_%s_PASSWORD is not set", strings.ToUpper(role))
		}
		if err := secretRef(e, byID, exp.NATSSecret.Name, role+"-password", exp.NATSSecret.Rendered); err != nil {
			return err
		}
	}
	return nil
}

func redisURL(rt object, byID map[string]object, exp *expectation) error {
	e := envVar(mainContainer(rt), "WSGATE_REDIS_URL")
	if exp.RedisURLSecret.Name != "" {
		if e == nil {
			return errors.New("expected WSGATE_REDIS_URL from a Secret, found no env entry")
		}
		return secretRef(e, byID, exp.RedisURLSecret.Name, exp.RedisURLSecret.Key, false)
	}
	if e != nil {
		return errors.New("WSGATE_REDIS_URL set in env, expected it in the ConfigMap")
	}
	url, err := setting(rt, byID, "WSGATE_REDIS_URL")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(url, "redis://") || strings.Contains(url, "@") {
		return fmt.Errorf("ConfigMap's WSGATE_REDIS_URL %q is not a password-less redis:// URL", url)
	}
	return nil
}

func redisSentinel(rt object, byID map[string]object, exp *expectation) error {
	for _, kv := range [][2]string{{"WSGATE_REDIS_SENTINELS", exp.RedisSentinels}, {"WSGATE_REDIS_MASTER_NAME", exp.RedisMasterName}, {"WSGATE_REDIS_SHARDS", exp.RedisShards}} {
		v, err := setting(rt, byID, kv[0])
		if kv[1] == "" {
			if err == nil {
				return fmt.Errorf("%s is %q, expected it unset", kv[0], v)
			}
			continue
		}
		if err != nil {
			return err
		}
		if v != kv[1] {
			return fmt.Errorf("%s is %q, expected %q", kv[0], v, kv[1])
		}
	}
	e := envVar(mainContainer(rt), "WSGATE_REDIS_SENTINEL_PASSWORD")
	if exp.SentinelPassword.Name == "" {
		if e != nil {
			return errors.New("WSGATE_REDIS_SENTINEL_PASSWORD is set, expected none")
		}
		return nil
	}
	if e == nil {
		return errors.New("expected WSGATE_REDIS_SENTINEL_PASSWORD from a Secret, found no env entry")
	}
	return secretRef(e, byID, exp.SentinelPassword.Name, exp.SentinelPassword.Key, false)
}

func secretRef(e map[string]interface{}, byID map[string]object, name, key string, rendered bool) error {
	ref := mapAt(e, "valueFrom", "secretKeyRef")
	if ref == nil {
		return fmt.Errorf("%s is not from a secretKeyRef", str(e, "name"))
	}
	if str(ref, "name") != name || str(ref, "key") != key {
		return fmt.Errorf("secretKeyRef %s/%s, expected %s/%s", str(ref, "name"), str(ref, "key"), name, key)
	}
	s, isRendered := byID["Secret/"+name]
	if isRendered != rendered {
		return fmt.Errorf("Secret %q rendered=%v, expected %v", name, isRendered, rendered)
	}
	if rendered && mapAt(s.m, "data")[key] == nil {
		return fmt.Errorf("rendered Secret %q has no key %q", name, key)
	}
	return nil
}

func replicas(d object, want int) error {
	got, ok := mapAt(d.m, "spec")["replicas"].(int)
	if !ok || got != want {
		return fmt.Errorf("replicas %v", mapAt(d.m, "spec")["replicas"])
	}
	return nil
}

func gatewayScaling(gw object, objs []object, exp *expectation) error {
	var hpas []object
	for _, o := range objs {
		if o.kind() == "HorizontalPodAutoscaler" {
			hpas = append(hpas, o)
		}
	}
	_, hasReplicas := mapAt(gw.m, "spec")["replicas"]
	if len(hpas) == 0 {
		if exp.GatewayReplicas == 0 {
			return errors.New("no HPA, and no fixed replica count expected")
		}
		return replicas(gw, exp.GatewayReplicas)
	}
	if exp.GatewayReplicas != 0 {
		return fmt.Errorf("HPA rendered, expected %d fixed replicas", exp.GatewayReplicas)
	}
	if hasReplicas {
		return errors.New("Deployment sets replicas although an HPA owns the count")
	}
	for _, h := range hpas {
		t := mapAt(h.m, "spec", "scaleTargetRef")
		if str(t, "kind") == "Deployment" && str(t, "name") == gw.name() {
			min, _ := mapAt(h.m, "spec")["minReplicas"].(int)
			max, _ := mapAt(h.m, "spec")["maxReplicas"].(int)
			if min < 2 || max < min {
				return fmt.Errorf("HPA min %d max %d: a gateway must survive losing one pod", min, max)
			}
			return nil
		}
	}
	return errors.New("no HPA targets the gateway Deployment")
}

func configMapsClean(objs []object) error {
	for _, o := range objs {
		if o.kind() != "ConfigMap" {
			continue
		}
		for k, v := range mapAt(o.m, "data") {
			if strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") || strings.Contains(k, "API_KEY") {
				return fmt.Errorf("%s holds %s", o.id(), k)
			}
			if k == "WSGATE_REDIS_URL" && strings.Contains(fmt.Sprint(v), "@") {
				return fmt.Errorf("%s holds a Redis URL with a password", o.id())
			}
		}
	}
	return nil
}

func noLeaks(objs []object, secrets []string) error {
	for _, s := range secrets {
		forms := []string{s, base64.StdEncoding.EncodeToString([]byte(s))}
		for _, o := range objs {
			if o.kind() == "Secret" {
				continue
			}
			for _, f := range forms {
				if strings.Contains(o.text, f) {
					return fmt.Errorf("%s contains a secret value", o.id())
				}
			}
		}
	}
	return nil
}

func services(objs []object) error {
	n := 0
	for _, s := range objs {
		if s.kind() != "Service" {
			continue
		}
		n++
		var target *object
		for i := range objs {
			if objs[i].kind() == "Deployment" && selects(mapAt(s.m, "spec", "selector"), podLabels(objs[i])) == nil {
				target = &objs[i]
				break
			}
		}
		if target == nil {
			return fmt.Errorf("%s selects no rendered Deployment's pods", s.id())
		}
		for _, p := range list(s.m, "spec", "ports") {
			if err := portDeclared(mainContainer(*target), asMap(p)["targetPort"]); err != nil {
				return fmt.Errorf("%s: %v", s.id(), err)
			}
		}
	}
	if n == 0 {
		return errors.New("no Service rendered")
	}
	return nil
}

// adminPort: the gateway serves /metrics and the full /health on WSGATE_ADMIN_LISTEN; that
// port is declared as "admin" on the container, and no Service but the scrape-labelled one
// (never the client Service, never an Ingress backend) targets it.
func adminPort(gw object, objs []object, byID map[string]object) error {
	v, err := setting(gw, byID, "WSGATE_ADMIN_LISTEN")
	if err != nil {
		return err
	}
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return fmt.Errorf("WSGATE_ADMIN_LISTEN %q is not host:port", v)
	}
	var declared bool
	for _, p := range list(mainContainer(gw), "ports") {
		pm := asMap(p)
		if pm["name"] == "admin" && fmt.Sprint(pm["containerPort"]) == v[i+1:] {
			declared = true
		}
	}
	if !declared {
		return fmt.Errorf("WSGATE_ADMIN_LISTEN %q is not the container's port named admin", v)
	}
	scraped := false
	for _, s := range objs {
		if s.kind() != "Service" || selects(mapAt(s.m, "spec", "selector"), podLabels(gw)) != nil {
			continue
		}
		for _, p := range list(s.m, "spec", "ports") {
			t := fmt.Sprint(asMap(p)["targetPort"])
			if t != "admin" && t != v[i+1:] {
				continue
			}
			if str(s.m, "metadata", "labels", "wsgate.io/scrape") != "true" {
				return fmt.Errorf("%s exposes the admin port", s.id())
			}
			scraped = true
		}
	}
	if !scraped {
		return errors.New("no scrape Service targets the admin port")
	}
	return nil
}

func ingresses(objs []object, byID map[string]object) error {
	for _, ing := range objs {
		if ing.kind() != "Ingress" {
			continue
		}
		ann := mapAt(ing.m, "metadata", "annotations")
		for _, k := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
			secs, err := strconv.Atoi(fmt.Sprint(ann[k]))
			if err != nil || secs < 3600 {
				return fmt.Errorf("%s: %s is %v, want >= 3600", ing.id(), k, ann[k])
			}
		}
		rules := list(ing.m, "spec", "rules")
		if len(rules) == 0 {
			return fmt.Errorf("%s has no rules", ing.id())
		}
		for _, r := range rules {
			for _, p := range list(asMap(r), "http", "paths") {
				svc := mapAt(asMap(p), "backend", "service")
				s, ok := byID["Service/"+str(svc, "name")]
				if !ok {
					return fmt.Errorf("%s routes to Service %q, not rendered", ing.id(), str(svc, "name"))
				}
				if !servicePort(s, str(svc, "port", "name")) {
					return fmt.Errorf("%s routes to port %q, which %s lacks", ing.id(), str(svc, "port", "name"), s.id())
				}
			}
		}
	}
	return nil
}

// routerPrivate: the routers' port carries the server API and the console (behind the API
// key, but still an admin surface): only ClusterIP Services reach it, and no Ingress routes to
// a Service that selects router pods. Reach the console with kubectl port-forward.
func routerPrivate(rt object, objs []object, byID map[string]object) error {
	for _, s := range objs {
		if s.kind() != "Service" || selects(mapAt(s.m, "spec", "selector"), podLabels(rt)) != nil {
			continue
		}
		if t := str(s.m, "spec", "type"); t != "" && t != "ClusterIP" {
			return fmt.Errorf("%s selects the routers and is of type %s", s.id(), t)
		}
	}
	for _, ing := range objs {
		if ing.kind() != "Ingress" {
			continue
		}
		for _, r := range list(ing.m, "spec", "rules") {
			for _, p := range list(asMap(r), "http", "paths") {
				s, ok := byID["Service/"+str(mapAt(asMap(p), "backend", "service"), "name")]
				if ok && selects(mapAt(s.m, "spec", "selector"), podLabels(rt)) == nil {
					return fmt.Errorf("%s routes to %s, which reaches the routers", ing.id(), s.id())
				}
			}
		}
	}
	return nil
}

func serviceMonitors(objs []object) error {
	for _, sm := range objs {
		if sm.kind() != "ServiceMonitor" {
			continue
		}
		sel := mapAt(sm.m, "spec", "selector", "matchLabels")
		eps := list(sm.m, "spec", "endpoints")
		if len(eps) == 0 {
			return fmt.Errorf("%s has no endpoints", sm.id())
		}
		comps := map[string]bool{}
		for _, s := range objs {
			if s.kind() != "Service" || selects(sel, mapAt(s.m, "metadata", "labels")) != nil {
				continue
			}
			for _, ep := range eps {
				if !servicePort(s, str(asMap(ep), "port")) || str(asMap(ep), "path") != "/metrics" {
					return fmt.Errorf("%s: endpoint %v does not fit %s", sm.id(), ep, s.id())
				}
			}
			comps[str(s.m, "metadata", "labels", "app.kubernetes.io/component")] = true
		}
		if !comps["gateway"] || !comps["router"] {
			return fmt.Errorf("%s selects Services of %v, want gateway and router", sm.id(), comps)
		}
	}
	return nil
}

// ---- helpers over the decoded documents ----

func deployment(objs []object, component string) (object, error) {
	var found []object
	for _, o := range objs {
		if o.kind() == "Deployment" && str(o.m, "metadata", "labels", "app.kubernetes.io/component") == component {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return object{}, fmt.Errorf("%d Deployments with component %s", len(found), component)
	}
	return found[0], nil
}

func podLabels(d object) map[string]interface{} {
	return mapAt(d.m, "spec", "template", "metadata", "labels")
}

func mainContainer(d object) map[string]interface{} {
	ctrs := list(d.m, "spec", "template", "spec", "containers")
	if len(ctrs) == 0 {
		return nil
	}
	return asMap(ctrs[0])
}

func envVar(ctr map[string]interface{}, name string) map[string]interface{} {
	for _, e := range list(ctr, "env") {
		if str(asMap(e), "name") == name {
			return asMap(e)
		}
	}
	return nil
}

// setting is the value a container sees for a variable set in its envFrom ConfigMap.
func setting(d object, byID map[string]object, name string) (string, error) {
	if e := envVar(mainContainer(d), name); e != nil {
		return "", fmt.Errorf("%s is set in env, expected it from the ConfigMap", name)
	}
	for _, ef := range list(mainContainer(d), "envFrom") {
		cm, ok := byID["ConfigMap/"+str(asMap(ef), "configMapRef", "name")]
		if !ok {
			continue
		}
		if v, ok := mapAt(cm.m, "data")[name].(string); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s is in no ConfigMap of %s", name, d.id())
}

func portDeclared(ctr map[string]interface{}, port interface{}) error {
	for _, p := range list(ctr, "ports") {
		pm := asMap(p)
		if port == pm["name"] || port == pm["containerPort"] {
			return nil
		}
	}
	return fmt.Errorf("port %v is not declared by container %q", port, str(ctr, "name"))
}

func servicePort(s object, name string) bool {
	for _, p := range list(s.m, "spec", "ports") {
		if str(asMap(p), "name") == name {
			return true
		}
	}
	return false
}

// selects reports whether every label of sel is on labels (an empty selector selects nothing).
func selects(sel, labels map[string]interface{}) error {
	if len(sel) == 0 {
		return errors.New("empty selector")
	}
	for k, v := range sel {
		if labels[k] != v {
			return fmt.Errorf("label %s=%v not on the pods", k, v)
		}
	}
	return nil
}

func parseSeconds(s string) (float64, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d.Seconds(), nil
}

func asMap(v interface{}) map[string]interface{} {
	m, _ := v.(map[string]interface{})
	return m
}

func mapAt(m map[string]interface{}, path ...string) map[string]interface{} {
	for _, p := range path {
		m = asMap(m[p])
	}
	return m
}

func list(m map[string]interface{}, path ...string) []interface{} {
	l, _ := mapAt(m, path[:len(path)-1]...)[path[len(path)-1]].([]interface{})
	return l
}

func str(m map[string]interface{}, path ...string) string {
	s, _ := mapAt(m, path[:len(path)-1]...)[path[len(path)-1]].(string)
	return s
}

func keys(m map[string]object) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func none(what string, items []string) error {
	if len(items) > 0 {
		return fmt.Errorf("%s: %v", what, items)
	}
	return nil
}

func sameSet(got, want []string) error {
	g := map[string]bool{}
	for _, k := range got {
		g[k] = true
	}
	var missing, extra []string
	for _, k := range want {
		if !g[k] {
			missing = append(missing, k)
		}
		delete(g, k)
	}
	for k := range g {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		return fmt.Errorf("missing %v, unexpected %v", missing, extra)
	}
	return nil
}
