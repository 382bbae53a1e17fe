package metrics

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Handler serves GET /v1/agent/metrics: with ?format=prometheus the
// Prometheus text exposition format (promhttp), otherwise Consul's JSON
// form (Summary). A metric that cannot be gathered is left out and the
// rest is served.
func (r *Registry) Handler() http.Handler {
	prom := promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("format") == "prometheus" {
			prom.ServeHTTP(w, req)
			return
		}
		b, err := json.Marshal(r.Summary())
		if err != nil {
			http.Error(w, "encode metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// Summary is Consul's JSON form of the metrics (its in-memory sink's
// display shape: consul/api's MetricsInfo). chainstore fills it from the
// Prometheus registry: gauges are Gauges; counters are Counters with the
// cumulative total as Count (rounded) and Sum; histograms and summaries
// are Samples with Count, Sum and Mean. Values are cumulative since the
// server started (Consul's cover its last 10 s interval), Min, Max and
// Stddev are not kept (0), and names are the Prometheus names.
type Summary struct {
	Timestamp string
	Gauges    []GaugeValue
	Points    []PointValue
	Counters  []SampledValue
	Samples   []SampledValue
}

// GaugeValue is one gauge.
type GaugeValue struct {
	Name   string
	Value  float64
	Labels map[string]string
}

// PointValue is one point (chainstore emits none).
type PointValue struct {
	Name   string
	Points []float64
}

// SampledValue is one counter or sample.
type SampledValue struct {
	Name   string
	Count  int64
	Rate   float64
	Sum    float64
	Min    float64
	Max    float64
	Mean   float64
	Stddev float64
	Labels map[string]string
}

// Summary gathers the registry into Consul's JSON shape.
func (r *Registry) Summary() Summary {
	mfs, _ := r.reg.Gather() // partial results on error, like the text form
	out := Summary{
		Timestamp: time.Now().UTC().Truncate(10 * time.Second).Format("2006-01-02 15:04:05 -0700 MST"),
		Gauges:    []GaugeValue{}, Points: []PointValue{}, Counters: []SampledValue{}, Samples: []SampledValue{},
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			labels := labelMap(m.GetLabel())
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out.Gauges = append(out.Gauges, GaugeValue{Name: name, Value: finite(m.GetGauge().GetValue()), Labels: labels})
			case dto.MetricType_UNTYPED:
				out.Gauges = append(out.Gauges, GaugeValue{Name: name, Value: finite(m.GetUntyped().GetValue()), Labels: labels})
			case dto.MetricType_COUNTER:
				v := finite(m.GetCounter().GetValue())
				out.Counters = append(out.Counters, SampledValue{Name: name, Count: int64(math.Round(v)), Sum: v, Mean: 1, Labels: labels})
			case dto.MetricType_SUMMARY:
				out.Samples = append(out.Samples, sample(name, m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum(), labels))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				out.Samples = append(out.Samples, sample(name, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), labels))
			}
		}
	}
	sort.SliceStable(out.Gauges, func(i, j int) bool { return out.Gauges[i].Name < out.Gauges[j].Name })
	sort.SliceStable(out.Counters, func(i, j int) bool { return out.Counters[i].Name < out.Counters[j].Name })
	sort.SliceStable(out.Samples, func(i, j int) bool { return out.Samples[i].Name < out.Samples[j].Name })
	return out
}

func sample(name string, count uint64, sum float64, labels map[string]string) SampledValue {
	s := SampledValue{Name: name, Count: int64(min(count, math.MaxInt64)), Sum: finite(sum), Labels: labels}
	if count > 0 {
		s.Mean = s.Sum / float64(count)
	}
	return s
}

func labelMap(lps []*dto.LabelPair) map[string]string {
	m := make(map[string]string, len(lps))
	for _, lp := range lps {
		m[lp.GetName()] = lp.GetValue()
	}
	return m
}

// finite maps NaN and infinities (which JSON cannot carry) to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
