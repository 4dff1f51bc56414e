//go:build drills

package sip

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registrar registers phones through the proxy and reads their bindings
// back, as a phone (or a proxy looking up a callee) would.
type registrar struct {
	ua *sipgo.UserAgent
	c  *sipgo.Client
}

const aorDomain = "holdover.test"

func newRegistrar(ctx context.Context) (*registrar, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("holdover-drill"))
	if err != nil {
		return nil, err
	}
	host, _, _ := strings.Cut(clientAddr, ":")
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientConnectionAddr(clientAddr))
	if err != nil {
		ua.Close()
		return nil, err
	}
	return &registrar{ua: ua, c: c}, nil
}

func (r *registrar) close() { _ = r.c.Close(); _ = r.ua.Close() }

func contactOf(aor string) string {
	return fmt.Sprintf("sip:%s@%s", aor, clientAddr)
}

func (r *registrar) request(aor string, withContact bool) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: proxyHost, Port: sipPort})
	addr := sip.Uri{Scheme: "sip", User: aor, Host: aorDomain}
	req.AppendHeader(&sip.ToHeader{Address: addr})
	from := &sip.FromHeader{Address: addr, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	if withContact {
		host, port := "127.0.0.36", 5070
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: aor, Host: host, Port: port}})
		req.AppendHeader(sip.NewHeader("Expires", "3600"))
	}
	return req
}

// register binds aor to its contact and checks the answer lists it.
func (r *registrar) register(ctx context.Context, aor string) error {
	ok, err := r.do(ctx, r.request(aor, true), aor)
	if err == nil && !ok {
		err = fmt.Errorf("200 without the binding")
	}
	return err
}

// query asks for aor's bindings (a REGISTER without Contact) and reports
// whether its contact is among them.
func (r *registrar) query(ctx context.Context, aor string) (bool, error) {
	return r.do(ctx, r.request(aor, false), aor)
}

func (r *registrar) do(ctx context.Context, req *sip.Request, aor string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := r.c.Do(ctx, req)
	if err != nil {
		return false, err
	}
	if res.StatusCode != sip.StatusOK {
		return false, fmt.Errorf("%d %s", res.StatusCode, res.Reason)
	}
	want := contactOf(aor)
	for _, h := range res.GetHeaders("Contact") {
		if strings.Contains(h.Value(), want) {
			return true, nil
		}
	}
	return false, nil
}
