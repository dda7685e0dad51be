package pipeline

import (
	"errors"
	"net/http"

	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/template"
)

// unmappedError answers a template whose value map could not translate a
// value (err is Render's error; nil when it is something else). Before
// the backend answered: the map's configured unmapped answer, by default
// 422 naming the value's source and the map — never the value, which may
// be a credential. Once the backend answered: 502, since the backend said
// something the contract cannot express.
func (x *Exchange) unmappedError(err error) *outcome.Error {
	var u *template.UnmappedError
	if !errors.As(err, &u) {
		return nil
	}
	if x.resp != nil {
		return outcome.New(http.StatusBadGateway, "exception",
			"the backend's answer holds a value the gateway cannot translate ("+u.Error()+")").WithKind("unmapped_answer")
	}
	if vm := x.table.cfg.ValueMaps[u.Map]; vm != nil && vm.Unmapped != nil && !x.unmapping {
		x.unmapping = true // its own templates must not recurse here
		defer func() { x.unmapping = false }()
		return x.answerError(vm.Unmapped, "unmapped")
	}
	return outcome.New(http.StatusUnprocessableEntity, x.base.cfg.IssueCode(http.StatusUnprocessableEntity), u.Error()).WithKind("unmapped")
}

// renderFailure is the answer to a template that could not be rendered:
// an untranslatable value (unmappedError), or a value that cannot stand
// where it goes (400).
func (x *Exchange) renderFailure(err error) *outcome.Error {
	if e := x.unmappedError(err); e != nil {
		return e
	}
	return errUnforwardable
}
