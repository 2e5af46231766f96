package faultstore

import (
	"context"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

var _ apikey.LimitStore = (*KeyStore)(nil)

// limits returns the wrapped store's LimitStore, or an error if it has none.
func (k *KeyStore) limits() (apikey.LimitStore, error) {
	ls, ok := k.Store.(apikey.LimitStore)
	if !ok {
		return nil, apikey.ErrLimitsUnsupported
	}
	return ls, nil
}

// SetLimits implements apikey.LimitStore (operation "SetLimits"); it fails
// with apikey.ErrLimitsUnsupported when the wrapped store is not one.
func (k *KeyStore) SetLimits(ctx context.Context, userID, id string, l apikey.Limits, reset bool) (rec apikey.Record, err error) {
	ls, err := k.limits()
	if err != nil {
		return apikey.Record{}, err
	}
	err = call(ctx, k.Inj, "SetLimits", func() (err error) { rec, err = ls.SetLimits(ctx, userID, id, l, reset); return })
	if err != nil {
		return apikey.Record{}, err
	}
	return rec, nil
}

// TakeQuota implements apikey.LimitStore (operation "TakeQuota").
func (k *KeyStore) TakeQuota(ctx context.Context, id string, n int64, period time.Time) (t apikey.QuotaTake, err error) {
	ls, err := k.limits()
	if err != nil {
		return apikey.QuotaTake{}, err
	}
	err = call(ctx, k.Inj, "TakeQuota", func() (err error) { t, err = ls.TakeQuota(ctx, id, n, period); return })
	if err != nil {
		return apikey.QuotaTake{}, err
	}
	return t, nil
}

// ReturnQuota implements apikey.LimitStore (operation "ReturnQuota").
func (k *KeyStore) ReturnQuota(ctx context.Context, id string, n int64, t apikey.QuotaTake) error {
	ls, err := k.limits()
	if err != nil {
		return err
	}
	return call(ctx, k.Inj, "ReturnQuota", func() error { return ls.ReturnQuota(ctx, id, n, t) })
}
