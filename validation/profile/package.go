package profile

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Package is the StructureDefinitions of one FHIR package, by canonical URL.
type Package struct {
	Name, Version string
	profiles      map[string]*Profile
	terms         *terminology
	// conceptMaps by canonical URL and by name, for value maps.
	conceptMaps map[string]*ConceptMap
}

// MaxPackageFile bounds one file inside a package .tgz.
const MaxPackageFile = 16 << 20

// LoadPackage reads a FHIR package as published (a .tgz with package/*.json)
// and compiles every StructureDefinition with a snapshot in it.
func LoadPackage(file string) (*Package, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	tr := tar.NewReader(gz)
	pkg := &Package{profiles: map[string]*Profile{}, terms: newTerminology()}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || path.Dir(name) != "package" || !strings.HasSuffix(name, ".json") {
			continue
		}
		if h.Size > MaxPackageFile {
			return nil, fmt.Errorf("%s: %s is larger than %d bytes", file, name, MaxPackageFile)
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxPackageFile))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if path.Base(name) == "package.json" {
			var meta struct{ Name, Version string }
			json.Unmarshal(data, &meta)
			pkg.Name, pkg.Version = meta.Name, meta.Version
			continue
		}
		pkg.add(data)
	}
	pkg.link()
	return pkg, nil
}

// LoadDir reads every *.json resource of a directory as one package (the
// project's own profiles, ValueSets and CodeSystems). A StructureDefinition
// that does not compile is an error here: these files are the project's.
func LoadDir(dir string) (*Package, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	pkg := &Package{Name: filepath.Base(dir), profiles: map[string]*Profile{}, terms: newTerminology()}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := pkg.add(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	pkg.link()
	return pkg, nil
}

// add takes one resource of a package: StructureDefinitions are compiled,
// ValueSets and CodeSystems kept for expansion, anything else skipped.
func (pkg *Package) add(data []byte) error {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(data, &head) != nil {
		return nil
	}
	switch head.ResourceType {
	case "ValueSet":
		pkg.terms.addValueSet(data)
	case "CodeSystem":
		pkg.terms.addCodeSystem(data)
	case "ConceptMap":
		m, err := ParseConceptMap(data)
		if err != nil {
			return err
		}
		if pkg.conceptMaps == nil {
			pkg.conceptMaps = map[string]*ConceptMap{}
		}
		for _, key := range []string{m.URL, m.Name} {
			if key != "" {
				pkg.conceptMaps[key] = m
			}
		}
	case "StructureDefinition":
		p, err := Load(data)
		if err != nil {
			return err
		}
		pkg.profiles[p.URL] = p
	}
	return nil
}

func (pkg *Package) link() {
	for _, p := range pkg.profiles {
		p.resolve = pkg.Profile
		p.valueSet = pkg.terms.valueSet
	}
}

// Profile returns the profile with a canonical URL, ignoring a |version
// suffix, or nil.
func (p *Package) Profile(url string) *Profile {
	if i := strings.IndexByte(url, '|'); i >= 0 {
		url = url[:i]
	}
	return p.profiles[url]
}

// Len is the number of profiles loaded.
func (p *Package) Len() int { return len(p.profiles) }
