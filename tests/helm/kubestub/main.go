// Command kubestub answers the read-only requests that `kubectl create --dry-run=client`
// makes of an API server, so that kubectl runs for real on a machine with no cluster:
//
//   - discovery (/api, /apis, /api/v1, /apis/G/V): kubectl maps each document's
//     apiVersion/kind to a REST resource and rejects a kind that no group serves ("no
//     matches for kind"). The stub lists only the groups and resources that wsgate's
//     chart may render, as a real API server with the prometheus-operator CRD lists them.
//   - /openapi/v2, from the swagger JSON given with -openapi: kubectl validates every
//     document against it (unknown fields, wrong types, missing required fields). The
//     document has no paths, so kubectl knows the "server" will not validate fields
//     itself and validates them on the client. /openapi/v3 is not served, as on an
//     older server, so kubectl falls back to v2.
//
// Nothing is ever written: any request other than GET is logged as a failure sign.
//
//	kubestub -addr-file FILE -openapi SWAGGER.json
//	(listens on a free 127.0.0.1 port and writes host:port to FILE)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/golang/protobuf/proto"
	openapi_v2 "github.com/googleapis/gnostic/openapiv2"
)

// kubectl asks for the protobuf form of the OpenAPI v2 document only; this is the
// type a real API server answers it with.
const openAPIV2ContentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

type resource struct {
	Name         string   `json:"name"`
	SingularName string   `json:"singularName"`
	Namespaced   bool     `json:"namespaced"`
	Kind         string   `json:"kind"`
	Verbs        []string `json:"verbs"`
	ShortNames   []string `json:"shortNames,omitempty"`
}

type groupVersion struct {
	group, version string
	resources      []resource
}

func (g groupVersion) String() string {
	if g.group == "" {
		return g.version
	}
	return g.group + "/" + g.version
}

var verbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func res(name, singular, kind string, short ...string) resource {
	return resource{Name: name, SingularName: singular, Namespaced: true, Kind: kind, Verbs: verbs, ShortNames: short}
}

// served lists what the chart renders; anything else must fail kubectl's mapping.
var served = []groupVersion{
	{"", "v1", []resource{
		res("configmaps", "configmap", "ConfigMap", "cm"),
		res("secrets", "secret", "Secret"),
		res("services", "service", "Service", "svc"),
	}},
	{"apps", "v1", []resource{res("deployments", "deployment", "Deployment", "deploy")}},
	{"policy", "v1", []resource{res("poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", "pdb")}},
	{"autoscaling", "v2", []resource{res("horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", "hpa")}},
	{"networking.k8s.io", "v1", []resource{res("ingresses", "ingress", "Ingress", "ing")}},
	{"monitoring.coreos.com", "v1", []resource{
		res("servicemonitors", "servicemonitor", "ServiceMonitor", "smon"),
		res("prometheusrules", "prometheusrule", "PrometheusRule", "promrule"),
	}},
}

func main() {
	addrFile := flag.String("addr-file", "", "file to write the listening host:port to")
	swagger := flag.String("openapi", "", "OpenAPI v2 (swagger) JSON to serve at /openapi/v2")
	flag.Parse()
	if *addrFile == "" || *swagger == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: kubestub -addr-file FILE -openapi SWAGGER.json")
		os.Exit(2)
	}
	spec, err := openAPIProto(*swagger)
	if err != nil {
		log.Fatalf("kubestub: %s: %v", *swagger, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("kubestub: listen: %v", err)
	}
	if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
		log.Fatalf("kubestub: %v", err)
	}
	log.Printf("kubestub: serving discovery and /openapi/v2 on http://%s", ln.Addr())
	log.Fatal(http.Serve(ln, handler(spec)))
}

func openAPIProto(file string) ([]byte, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	doc, err := openapi_v2.ParseDocument(text)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

func handler(spec []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			log.Printf("kubestub: FAIL: unexpected %s %s (a dry run must not write)", r.Method, r.URL.Path)
		}
		if r.URL.Path == "/openapi/v2" {
			w.Header().Set("Content-Type", openAPIV2ContentType)
			if _, err := w.Write(spec); err != nil {
				log.Printf("kubestub: writing /openapi/v2: %v", err)
			}
			return
		}
		serveDiscovery(w, r)
	}
}

func serveDiscovery(w http.ResponseWriter, r *http.Request) {
	body, ok := discovery(strings.TrimSuffix(r.URL.Path, "/"))
	if !ok {
		// A real API server answers a Status; kubectl treats 404 as "not served".
		body = map[string]interface{}{
			"kind": "Status", "apiVersion": "v1", "status": "Failure",
			"reason": "NotFound", "code": http.StatusNotFound,
			"message": "kubestub serves discovery only: " + r.URL.Path,
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
	}
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("kubestub: writing %s: %v", r.URL.Path, err)
	}
}

func discovery(path string) (interface{}, bool) {
	switch path {
	case "/api":
		return map[string]interface{}{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []interface{}{}}, true
	case "/apis":
		var groups []interface{}
		for _, g := range served {
			if g.group == "" {
				continue
			}
			v := map[string]string{"groupVersion": g.String(), "version": g.version}
			groups = append(groups, map[string]interface{}{
				"name": g.group, "versions": []interface{}{v}, "preferredVersion": v,
			})
		}
		return map[string]interface{}{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}, true
	case "/version":
		return map[string]string{"major": "1", "minor": "29", "gitVersion": "v1.29.0-kubestub"}, true
	}
	for _, g := range served {
		prefix := "/apis/"
		if g.group == "" {
			prefix = "/api/"
		}
		if path == prefix+g.String() {
			return map[string]interface{}{"kind": "APIResourceList", "apiVersion": "v1",
				"groupVersion": g.String(), "resources": g.resources}, true
		}
	}
	return nil, false
}
