package local

import (
	"fmt"
	"reflect"

	"github.com/sluice-ml/sluice/backends"
)

// CheckRecordViews returns an error when a view of the record of a step of
// plan differs from the record, or when planRenders(plan) is not what the
// record's renders says, which it returns.
func CheckRecordViews(plan *backends.Plan) (renders bool, err error) {
	for _, s := range plan.AllSteps() {
		if view, rs := recordStep(s, true), recordStep(s, false); !reflect.DeepEqual(view, rs) {
			return false, fmt.Errorf("step %s: the view of its record differs:\n%+v\n%+v", s.Name, view, rs)
		}
	}
	want := newRecord(plan).renders()
	if got := planRenders(plan); got != want {
		return want, fmt.Errorf("planRenders = %v, the record's renders() = %v", got, want)
	}
	return want, nil
}
