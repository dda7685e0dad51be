package profile

import "strings"

// Set is every profile and terminology loaded for one validation setup:
// packages and single StructureDefinitions. Profiles in a Set resolve type
// profiles and ValueSets across all of its members.
type Set struct {
	packages []*Package
	single   map[string]*Profile
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{single: map[string]*Profile{}} }

// AddPackage adds a package's profiles and terminology.
func (s *Set) AddPackage(p *Package) {
	s.packages = append(s.packages, p)
	s.link()
}

// AddProfile adds a single StructureDefinition.
func (s *Set) AddProfile(p *Profile) {
	s.single[p.URL] = p
	s.link()
}

// Profile finds a profile by canonical URL (|version ignored), or nil.
func (s *Set) Profile(url string) *Profile {
	if i := strings.IndexByte(url, '|'); i >= 0 {
		url = url[:i]
	}
	if p := s.single[url]; p != nil {
		return p
	}
	for _, pkg := range s.packages {
		if p := pkg.profiles[url]; p != nil {
			return p
		}
	}
	return nil
}

func (s *Set) valueSet(url string) *valueSet {
	for _, pkg := range s.packages {
		if vs := pkg.terms.valueSet(url); vs != nil {
			return vs
		}
	}
	return nil
}

// link points every member at the set's resolvers.
func (s *Set) link() {
	each := func(p *Profile) {
		p.resolve = s.Profile
		p.valueSet = s.valueSet
	}
	for _, p := range s.single {
		each(p)
	}
	for _, pkg := range s.packages {
		for _, p := range pkg.profiles {
			each(p)
		}
	}
}
