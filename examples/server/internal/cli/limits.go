package cli

import (
	"errors"
	"strconv"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
)

// rateFlags is the repeatable --rate-limit flag.
type rateFlags []apikey.RateLimit

func (f *rateFlags) String() string {
	if f == nil {
		return ""
	}
	s := make([]string, len(*f))
	for i, r := range *f {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}

func (f *rateFlags) Set(v string) error {
	r, err := apikey.ParseRateLimit(v)
	if err != nil {
		return err
	}
	*f = append(*f, r)
	return nil
}

// limitFlags are api-key's --rate-limit, --quota and --refill.
type limitFlags struct {
	rate     rateFlags
	quota    int64
	hasQuota bool
	refill   apikey.Refill
}

func (f *limitFlags) setQuota(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > apikey.MaxLimit {
		return errors.New("must be a whole number of uses, 0 to 10^12")
	}
	f.quota, f.hasQuota = n, true
	return nil
}

func (f *limitFlags) setRefill(v string) (err error) {
	f.refill, err = apikey.ParseRefill(v)
	return err
}

// limits returns the key's limits. A --refill without --quota starts the
// quota with one refill's worth.
func (f *limitFlags) limits() (apikey.Limits, error) {
	l := apikey.Limits{Rate: f.rate}
	switch {
	case f.hasQuota:
		l.Quota = &apikey.Quota{Limit: f.quota, Refill: f.refill}
	case f.refill.Amount > 0:
		l.Quota = &apikey.Quota{Limit: f.refill.Amount, Refill: f.refill}
	}
	return l, l.Validate()
}
