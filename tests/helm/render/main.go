// Command render renders a Helm chart the way `helm template` does, for a machine
// without a helm binary: Go text/template plus Sprig, with the Helm built-ins that
// wsgate's chart uses (include, toYaml, required, fail, .Values, .Release, .Chart,
// .Template). It is stricter than Helm in one way only: a reference to a value
// that does not exist is an error (Helm's --strict), so a typo cannot render as "".
//
//	render -chart helm/wsgate [-f values.yaml]... [-name wsgate] [-namespace default]
//
// Writes the manifests to stdout, each file preceded by "# Source: <chart>/templates/<file>".
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

// chartMeta holds the Chart.yaml fields a template may read as .Chart.X.
type chartMeta struct {
	APIVersion  string   `yaml:"apiVersion"`
	Name        string   `yaml:"name"`
	Version     string   `yaml:"version"`
	AppVersion  string   `yaml:"appVersion"`
	Description string   `yaml:"description"`
	Type        string   `yaml:"type"`
	Home        string   `yaml:"home"`
	Keywords    []string `yaml:"keywords"`
}

type release struct {
	Name      string
	Namespace string
	Service   string
	Revision  int
	IsInstall bool
	IsUpgrade bool
}

type templateInfo struct {
	Name     string
	BasePath string
}

// chartFiles is Helm's .Files: the chart's non-template files by path from the chart root.
type chartFiles struct{ dir string }

// Get returns the file's contents, or "" when there is no such file (as Helm does).
func (f chartFiles) Get(name string) string {
	clean := path.Clean("/" + name)[1:]
	if clean == "" || strings.HasPrefix(clean, "templates/") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(clean)))
	if err != nil {
		return ""
	}
	return string(b)
}

// Helm's include may recurse through defines; bound it as Helm does.
const maxIncludeDepth = 1000

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	chartDir := flag.String("chart", "", "chart directory (holds Chart.yaml)")
	name := flag.String("name", "wsgate", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	var valueFiles fileList
	flag.Var(&valueFiles, "f", "values file merged over the chart's values.yaml (repeatable)")
	flag.Parse()
	if *chartDir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: render -chart DIR [-f values.yaml]... [-name R] [-namespace NS]")
		os.Exit(2)
	}
	out, err := render(*chartDir, valueFiles, release{
		Name: *name, Namespace: *namespace, Service: "Helm", Revision: 1, IsInstall: true,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintf(os.Stderr, "render: writing output: %v\n", err)
		os.Exit(1)
	}
}

func render(chartDir string, valueFiles []string, rel release) ([]byte, error) {
	var meta chartMeta
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &meta); err != nil {
		return nil, err
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, errors.New("Chart.yaml: name and version are required")
	}
	values, err := loadValues(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range valueFiles {
		over, err := loadValues(f)
		if err != nil {
			return nil, err
		}
		values = coalesce(values, over)
	}

	tmpl, names, err := parseTemplates(chartDir, meta.Name)
	if err != nil {
		return nil, err
	}
	basePath := path.Join(meta.Name, "templates")
	var out bytes.Buffer
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue // partials hold only defines
		}
		data := map[string]interface{}{
			"Values":   values,
			"Chart":    meta,
			"Release":  rel,
			"Template": templateInfo{Name: n, BasePath: basePath},
			"Files":    chartFiles{dir: chartDir},
		}
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, n, data); err != nil {
			return nil, err
		}
		if strings.TrimSpace(buf.String()) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.Trim(buf.String(), "\n"))
	}
	return out.Bytes(), nil
}

// parseTemplates parses every file of templates/ into one set, named as Helm names
// them (<chart>/templates/<file>), so that defines in any file serve all of them.
func parseTemplates(chartDir, chartName string) (*template.Template, []string, error) {
	dir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	root := template.New(chartName).Option("missingkey=error")
	root.Funcs(funcMap(root))
	var names []string
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".tpl")) {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, err
		}
		n := path.Join(chartName, "templates", e.Name())
		if _, err := root.New(n).Parse(string(text)); err != nil {
			return nil, nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return root, names, nil
}

func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these: a chart must render the same on every machine.
	delete(f, "env")
	delete(f, "expandenv")
	depth := 0
	f["include"] = func(name string, data interface{}) (string, error) {
		if depth >= maxIncludeDepth {
			return "", fmt.Errorf("include %q: nested more than %d deep", name, maxIncludeDepth)
		}
		depth++
		defer func() { depth-- }()
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["toYaml"] = toYAML
	// `helm template` has no cluster to ask: lookup finds nothing, an empty map.
	f["lookup"] = func(apiVersion, kind, namespace, name string) map[string]interface{} {
		return map[string]interface{}{}
	}
	// Helm's fromYaml: a YAML document as a map; on a parse error, a map whose "Error" is it.
	f["fromYaml"] = func(text string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			m = map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	return f
}

// toYAML is Helm's toYaml: the value as block YAML, without the final newline.
func toYAML(v interface{}) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func readYAML(file string, into interface{}) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(text, into); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// loadValues reads a values file the way Helm does: through JSON, so numbers are
// float64 in templates exactly as under helm.
func loadValues(file string) (map[string]interface{}, error) {
	var raw interface{}
	if err := readYAML(file, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%s: top level must be a mapping: %w", file, err)
	}
	return m, nil
}

// coalesce merges over onto base as Helm merges -f files: maps merge key by key,
// anything else replaces, and a null removes the key.
func coalesce(base, over map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		bm, bok := out[k].(map[string]interface{})
		om, ook := v.(map[string]interface{})
		if bok && ook {
			out[k] = coalesce(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}
