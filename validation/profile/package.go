package profile

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Package is the StructureDefinitions of one FHIR package, by canonical URL.
type Package struct {
	Name, Version string
	profiles      map[string]*Profile
	terms         *terminology
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
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if json.Unmarshal(data, &head) != nil {
			continue
		}
		switch head.ResourceType {
		case "ValueSet":
			pkg.terms.addValueSet(data)
			continue
		case "CodeSystem":
			pkg.terms.addCodeSystem(data)
			continue
		case "StructureDefinition":
		default:
			continue
		}
		p, err := Load(data)
		if err != nil {
			continue // differential-only definitions: not usable yet
		}
		pkg.profiles[p.URL] = p
	}
	for _, p := range pkg.profiles {
		p.resolve = pkg.Profile
		p.valueSet = pkg.terms.valueSet
	}
	return pkg, nil
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
