package agencysim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"loanflow/agency"
)

var customerIDPattern = regexp.MustCompile(`^C[0-9]{8}$`)

// Server serves the simulated agencies and their admin API. It is safe for
// concurrent use.
//
// Agency endpoints (see package agency for the bodies):
//
//	GET /kcb/v1/score, /nice/v1/score, /mydata/v1/financials, /scraping/v1/financials
//
// Admin endpoints ({name} is kcb, nice, mydata or scraping):
//
//	GET    /admin/agencies                    config, faults and stats of every agency
//	GET    /admin/agencies/{name}             the same for one agency
//	GET    /admin/agencies/{name}/faults      current faults
//	PUT    /admin/agencies/{name}/faults      JSON merge patch: absent fields unchanged, null resets a field
//	PATCH  /admin/agencies/{name}/faults      same as PUT
//	DELETE /admin/agencies/{name}/faults      clear every fault
//	GET    /admin/agencies/{name}/stats       counters
//	POST   /admin/agencies/{name}/stats/reset zero the counters and high-water marks
//	GET    /healthz
type Server struct {
	agencies map[agency.Name]*sim
	mux      *http.ServeMux
	logger   atomic.Pointer[slog.Logger]
}

// New builds a simulator of every agency in agency.All. An agency missing
// from cfgs (or a nil cfgs) gets DefaultConfig; zero or invalid fields are
// replaced by defaults as Config describes. Names not in agency.All are ignored.
func New(cfgs map[agency.Name]Config) *Server {
	s := &Server{agencies: make(map[agency.Name]*sim, len(agency.All)), mux: http.NewServeMux()}
	for _, n := range agency.All {
		cfg, ok := cfgs[n]
		if !ok {
			cfg = DefaultConfig(n)
		}
		a := newSim(n, cfg)
		s.agencies[n] = a
		s.mux.HandleFunc("GET /"+string(n)+n.Path(), s.serveAgency(a))
	}
	s.mux.HandleFunc("GET /admin/agencies", s.listAgencies)
	s.mux.HandleFunc("GET /admin/agencies/{name}", s.withAgency(s.getAgency))
	s.mux.HandleFunc("GET /admin/agencies/{name}/faults", s.withAgency(s.getFaults))
	s.mux.HandleFunc("PUT /admin/agencies/{name}/faults", s.withAgency(s.patchFaults))
	s.mux.HandleFunc("PATCH /admin/agencies/{name}/faults", s.withAgency(s.patchFaults))
	s.mux.HandleFunc("DELETE /admin/agencies/{name}/faults", s.withAgency(s.clearFaults))
	s.mux.HandleFunc("GET /admin/agencies/{name}/stats", s.withAgency(s.getStats))
	s.mux.HandleFunc("POST /admin/agencies/{name}/stats/reset", s.withAgency(s.resetStats))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return s
}

// Handler serves the agencies and the admin API.
func (s *Server) Handler() http.Handler { return s.mux }

// SetLogger makes the server log fault changes; nil (the default) logs nothing.
func (s *Server) SetLogger(l *slog.Logger) { s.logger.Store(l) }

// Config is the normalized capacity model of an agency.
func (s *Server) Config(name agency.Name) (Config, error) {
	a, err := s.agency(name)
	if err != nil {
		return Config{}, err
	}
	return a.cfg, nil
}

// SetFaults replaces the faults of an agency; Faults{} clears them.
func (s *Server) SetFaults(name agency.Name, f Faults) error {
	a, err := s.agency(name)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("set faults of agency %s: %w", name, err)
	}
	a.setFaults(f)
	s.logFaults(name, f)
	return nil
}

// Faults are the faults currently injected into an agency (zero for an unknown name).
func (s *Server) Faults(name agency.Name) Faults {
	a, err := s.agency(name)
	if err != nil {
		return Faults{}
	}
	return a.getFaults()
}

// Stats are an agency's counters (zero for an unknown name).
func (s *Server) Stats(name agency.Name) Stats {
	a, err := s.agency(name)
	if err != nil {
		return Stats{Agency: name}
	}
	return a.stats()
}

// ResetStats zeroes an agency's counters; the high-water marks restart from
// the current in-service and queued counts.
func (s *Server) ResetStats(name agency.Name) {
	if a, err := s.agency(name); err == nil {
		a.resetStats()
	}
}

func (s *Server) agency(name agency.Name) (*sim, error) {
	a, ok := s.agencies[name]
	if !ok {
		_, err := agency.Parse(string(name))
		if err == nil { // a valid name in another spelling
			err = fmt.Errorf("invalid agency %q: accepted lower-case names", name)
		}
		return nil, err
	}
	return a, nil
}

func (s *Server) logFaults(name agency.Name, f Faults) {
	if l := s.logger.Load(); l != nil {
		capacity := "configured"
		if f.Capacity != nil {
			capacity = strconv.Itoa(*f.Capacity)
		}
		l.Info("agency faults set", "agency", name, "down", f.Down, "error_rate", f.ErrorRate, "refuse_rate", f.RefuseRate,
			"added_latency", f.AddedLatency.String(), "service_time_factor", f.ServiceTimeFactor, "capacity", capacity)
	}
}

// Start serves the simulator on addr (":0" picks a free port) until ctx ends
// or stop is called, and returns the base URL to give agency.URLsFromBase.
// stop shuts down gracefully, waiting up to 5s for requests in flight.
func (s *Server) Start(ctx context.Context, addr string) (baseURL string, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s for the agency simulator: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
				stopErr = fmt.Errorf("shut down the agency simulator: %w", err)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				stopErr = errors.Join(stopErr, fmt.Errorf("serve the agency simulator: %w", err))
			}
		})
		return stopErr
	}
	context.AfterFunc(ctx, func() { _ = stop() })
	return "http://" + dialable(ln.Addr()), stop, nil
}

// dialable turns a listening address into one a client can dial: an
// unspecified host (":8090", "0.0.0.0") becomes loopback.
func dialable(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		// A wildcard listener is dual-stack, and IPv4 loopback exists even in
		// containers without IPv6.
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

func (s *Server) serveAgency(a *sim) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		customerID := q.Get(agency.ParamCustomerID)
		applicationID := q.Get(agency.ParamApplicationID)
		if !customerIDPattern.MatchString(customerID) {
			a.clientError()
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s %s: accepted \"C\" followed by 8 digits, e.g. C00012345",
				agency.ParamCustomerID, strconv.Quote(customerID)))
			return
		}
		if len(applicationID) > 128 {
			a.clientError()
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s of %d characters: accepted at most 128",
				agency.ParamApplicationID, len(applicationID)))
			return
		}
		out, reason := a.serve(r.Context())
		switch out {
		case outAbandoned:
			return // nobody is listening
		case outOverload:
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(a.cfg.RetryAfter.Seconds()))))
			writeError(w, http.StatusServiceUnavailable, "agency overloaded: "+reason)
			return
		case outError:
			writeError(w, http.StatusInternalServerError, "agency internal error")
			return
		}
		report := reportID(a.name, customerID, applicationID)
		if a.name.Kind() == agency.KindScore {
			writeJSON(w, http.StatusOK, agency.ScoreResponse{CustomerID: customerID, Score: Score(a.name, customerID), ReportID: report})
			return
		}
		income, debt, service := Financials(a.name, customerID)
		writeJSON(w, http.StatusOK, agency.FinancialsResponse{CustomerID: customerID, AnnualIncome: income,
			TotalDebt: debt, AnnualDebtService: service, ReportID: report})
	}
}

func (a *sim) clientError() {
	a.mu.Lock()
	a.st.Requests++
	a.st.ClientErrors++
	a.mu.Unlock()
}

// agencyView is what the admin API shows of an agency.
type agencyView struct {
	Agency agency.Name `json:"agency"`
	Config configJSON  `json:"config"`
	Faults Faults      `json:"faults"`
	Stats  Stats       `json:"stats"`
}

type configJSON struct {
	Capacity             int     `json:"capacity"`
	MedianServiceTime    string  `json:"median_service_time"`
	Jitter               float64 `json:"jitter"`
	QueueLimit           int     `json:"queue_limit"`
	QueueTimeout         string  `json:"queue_timeout"`
	InflationPerOverload float64 `json:"inflation_per_overload"`
	RetryAfter           string  `json:"retry_after"`
	WorkAfterAbandon     bool    `json:"work_after_abandon"`
}

func (a *sim) view() agencyView {
	c := a.cfg
	return agencyView{
		Agency: a.name,
		Config: configJSON{c.Capacity, c.MedianServiceTime.String(), c.Jitter, c.QueueLimit, c.QueueTimeout.String(),
			c.InflationPerOverload, c.RetryAfter.String(), c.WorkAfterAbandon},
		Faults: a.getFaults(),
		Stats:  a.stats(),
	}
}

func (s *Server) withAgency(h func(http.ResponseWriter, *http.Request, *sim)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.agency(agency.Name(r.PathValue("name")))
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		h(w, r, a)
	}
}

func (s *Server) listAgencies(w http.ResponseWriter, _ *http.Request) {
	views := make([]agencyView, 0, len(agency.All))
	for _, n := range agency.All {
		views = append(views, s.agencies[n].view())
	}
	writeJSON(w, http.StatusOK, map[string]any{"agencies": views})
}

func (s *Server) getAgency(w http.ResponseWriter, _ *http.Request, a *sim) {
	writeJSON(w, http.StatusOK, a.view())
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request, a *sim) {
	writeJSON(w, http.StatusOK, a.getFaults())
}

func (s *Server) patchFaults(w http.ResponseWriter, r *http.Request, a *sim) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read faults: %v", err))
		return
	}
	f, err := a.updateFaults(func(cur Faults) (Faults, error) { return patchFaults(cur, body) })
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("patch faults of agency %s: %v", a.name, err))
		return
	}
	s.logFaults(a.name, f)
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) clearFaults(w http.ResponseWriter, _ *http.Request, a *sim) {
	a.setFaults(Faults{})
	s.logFaults(a.name, Faults{})
	writeJSON(w, http.StatusOK, a.getFaults())
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request, a *sim) {
	writeJSON(w, http.StatusOK, a.stats())
}

func (s *Server) resetStats(w http.ResponseWriter, _ *http.Request, a *sim) {
	a.resetStats()
	writeJSON(w, http.StatusOK, a.stats())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, agency.ErrorResponse{Error: msg})
}
