// Package kubetest runs a real Kubernetes API server for tests: etcd and
// kube-apiserver on loopback ports, in a temporary directory, with token
// authentication and RBAC, so that code written for a cluster meets the
// real API server's validation, optimistic concurrency and authorization
// instead of a fake.
//
// No distribution packages kube-apiserver; scripts/kube-apiserver.sh in the
// keyflow repository builds it from Kubernetes' Go sources into the user's
// cache directory (BinaryPath), and installs etcd (Debian's etcd-server)
// when it is missing.
//
// A Server is safe for concurrent use. Its processes are killed with the
// test process if it dies first (Linux).
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes release scripts/kube-apiserver.sh builds.
const Version = "v1.37.2"

// BinaryEnv names the environment variable that points at a kube-apiserver
// binary, overriding BinaryPath's default.
const BinaryEnv = "KEYFLOW_KUBE_APISERVER"

// BinaryPath returns where the kube-apiserver binary is expected: $BinaryEnv
// if set, else the file scripts/kube-apiserver.sh builds,
// <user cache dir>/keyflow/kube-apiserver/<Version>/kube-apiserver. ok
// reports whether an executable file is there.
func BinaryPath() (path string, ok bool) {
	path = os.Getenv(BinaryEnv)
	if path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", false
		}
		path = filepath.Join(dir, "keyflow", "kube-apiserver", Version, "kube-apiserver")
	}
	fi, err := os.Stat(path)
	return path, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Server is a running etcd and kube-apiserver. Stop and Start stop and
// restart the API server alone (etcd keeps the data, the address stays the
// same), to test what clients do while it is away.
type Server struct {
	bin, dir   string
	etcdURL    string
	port       int
	adminToken string
	caData     []byte

	mu   sync.Mutex
	etcd *exec.Cmd
	api  *exec.Cmd
	// apiDone is closed when the API server process exits.
	apiDone chan struct{}
}

// New starts etcd and kube-apiserver (binary bin; etcd from PATH) with
// their data in dir, and waits until the API server is ready (a few
// seconds). Close stops both.
func New(bin, dir string) (*Server, error) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("kubetest: etcd not found (apt-get install etcd-server): %w", err)
	}
	s := &Server{bin: bin, dir: dir, adminToken: randomToken()}
	if err := s.writeFiles(); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s.port = ports[2]
	s.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.etcd = command(etcdBin, filepath.Join(dir, "etcd.log"),
		"--name", "kubetest",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", s.etcdURL, "--advertise-client-urls", s.etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "kubetest="+peerURL,
		"--log-level", "error")
	if err := start(s.etcd); err != nil {
		return nil, fmt.Errorf("kubetest: start etcd: %w", err)
	}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// writeFiles writes the token file and the service-account key pair.
func (s *Server) writeFiles() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(s.adminToken + ",kubetest-admin,kubetest-admin,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	return os.MkdirAll(filepath.Join(s.dir, "certs"), 0o700)
}

// Start starts the API server (again, after Stop) and waits until it is
// ready. It does nothing if it is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		return nil
	}
	logFile := filepath.Join(s.dir, "kube-apiserver.log")
	cmd := command(s.bin, logFile,
		"--etcd-servers", s.etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(s.port),
		"--cert-dir", filepath.Join(s.dir, "certs"),
		"--endpoint-reconciler-type", "none",
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "RBAC",
		"--token-auth-file", filepath.Join(s.dir, "tokens.csv"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(s.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(s.dir, "sa.key"),
		"--enable-priority-and-fairness=false",
		"--v", "0")
	if err := start(cmd); err != nil {
		return fmt.Errorf("kubetest: start kube-apiserver: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.api, s.apiDone = cmd, done
	if err := s.waitReady(done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		s.api = nil
		return fmt.Errorf("%w\n%s", err, tail(logFile))
	}
	return nil
}

// waitReady polls /readyz until it answers ok, the process exits, or a
// minute passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			return errors.New("kubetest: kube-apiserver exited before it was ready")
		default:
		}
		// The API server writes its self-signed certificate at its first
		// start and reuses it later: caData is set once, before New
		// returns, so Config may read it without the lock.
		ca := s.caData
		if ca == nil {
			ca, _ = os.ReadFile(filepath.Join(s.dir, "certs", "apiserver.crt"))
		}
		if len(ca) > 0 && s.ready(ca) {
			if s.caData == nil {
				s.caData = ca
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("kubetest: kube-apiserver not ready after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ready reports whether /readyz answers ok over TLS trusting ca.
func (s *Server) ready(ca []byte) bool {
	cfg := s.Config(s.adminToken)
	cfg.CAData = ca
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return false
	}
	client.Timeout = 5 * time.Second
	req, err := http.NewRequest(http.MethodGet, cfg.Host+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK && body.String() == "ok"
}

// Stop stops the API server (SIGTERM, then SIGKILL after 30 s) and waits
// until it has exited; etcd keeps running. It does nothing if the API
// server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api == nil {
		return
	}
	_ = s.api.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.apiDone:
	case <-time.After(30 * time.Second):
		_ = s.api.Process.Kill()
		<-s.apiDone
	}
	s.api = nil
}

// Close stops the API server and etcd.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd != nil {
		_ = s.etcd.Process.Kill()
		_ = s.etcd.Wait()
		s.etcd = nil
	}
}

// URL is the API server's address, https://127.0.0.1:PORT.
func (s *Server) URL() string { return "https://127.0.0.1:" + strconv.Itoa(s.port) }

// AdminToken is a bearer token of the group system:masters.
func (s *Server) AdminToken() string { return s.adminToken }

// Config is a client configuration for the bearer token, trusting the API
// server's self-signed certificate, without client-side rate limit.
func (s *Server) Config(token string) *rest.Config {
	return &rest.Config{
		Host:            s.URL(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caData},
		QPS:             -1, // no client-side rate limit
		Timeout:         30 * time.Second,
	}
}

// Client is a client for the bearer token.
func (s *Server) Client(token string) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(s.Config(token))
}

// Admin is a client with the admin token.
func (s *Server) Admin() (kubernetes.Interface, error) { return s.Client(s.adminToken) }

// WriteKubeconfig writes a kubeconfig file for the bearer token, as
// KUBECONFIG would name it.
func (s *Server) WriteKubeconfig(path, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: s.URL(), CertificateAuthorityData: s.caData}
	cfg.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest"}
	cfg.CurrentContext = "kubetest"
	return clientcmd.WriteToFile(*cfg, path)
}

// CreateNamespace creates a namespace (AlreadyExists is not an error).
func (s *Server) CreateNamespace(ctx context.Context, name string) error {
	admin, err := s.Admin()
	if err != nil {
		return err
	}
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: create namespace %s: %w", name, err)
	}
	return nil
}

// SecretsVerbs are the verbs LimitedToken's role grants on secrets.
var SecretsVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// LimitedToken creates, in namespace (created if missing), a service
// account, a Role that allows SecretsVerbs on secrets and nothing else, and
// a RoleBinding of the one to the other, and returns a token of that service
// account (from the TokenRequest API, valid an hour): what a least-privilege
// deployment in that namespace runs with.
func (s *Server) LimitedToken(ctx context.Context, namespace, serviceAccount string) (string, error) {
	if err := s.CreateNamespace(ctx, namespace); err != nil {
		return "", err
	}
	admin, err := s.Admin()
	if err != nil {
		return "", err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount, Namespace: namespace}}
	if _, err := admin.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("kubetest: create service account: %w", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccount + "-secrets", Namespace: namespace},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: SecretsVerbs}},
	}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("kubetest: create role: %w", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: namespace}},
	}
	if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("kubetest: create role binding: %w", err)
	}
	hour := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("kubetest: request token: %w", err)
	}
	return tr.Status.Token, nil
}

// command is a process with its output appended to logFile, killed when
// the test process dies.
func command(bin, logFile string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	if f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		cmd.Stdout, cmd.Stderr = f, f
	}
	dieWithParent(cmd)
	return cmd
}

// start starts cmd and closes this process's copy of its log file.
func start(cmd *exec.Cmd) error {
	err := cmd.Start()
	if f, ok := cmd.Stdout.(*os.File); ok {
		_ = f.Close()
	}
	return err
}

// tail is the end of a log file, for start-up errors.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
