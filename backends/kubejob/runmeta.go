package kubejob

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends"
)

// recordMeta sets what the run's RefMeta refs read from its record, rec:
// the run id, the record's creation as the start (o.started), and the
// scheduled time the record keeps, so that every orchestrator of the run,
// resumed or in the cluster, gives the same values.
func (o *orchestrator) recordMeta(rec *corev1.ConfigMap) error {
	o.meta = backends.RunMeta{ID: o.run, Started: o.started}
	if s, ok := rec.Data[recordScheduled]; ok {
		t, err := time.Parse(backends.MetaTimeLayout, s)
		if err != nil {
			return fmt.Errorf("kubejob: run %s: record %s: %s %q is not a time in RFC 3339: %w", o.run, rec.Name, recordScheduled, s, err)
		}
		o.meta.Scheduled = t
	}
	return nil
}
