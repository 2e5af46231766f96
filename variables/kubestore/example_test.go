package kubestore_test

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
)

// Keep a user's variables in a Secret in namespace "langflow", where
// Langflow (LANGFLOW_VARIABLE_STORE=kubernetes) reads them. In a server, the
// client comes from kubestore.DefaultClient (in-cluster or KUBECONFIG); here
// from client-go's fake clientset.
func Example() {
	ctx := context.Background()
	client := fake.NewClientset()
	k, _ := secrets.NewKeyring("my-master-secret-0123456789-abcdefgh")
	store, err := kubestore.New(kubestore.Config{Client: client, Keyring: k})
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, _ := variables.NewService(variables.ServiceConfig{Store: store, Keyring: k})

	user := "0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11"
	_, _ = svc.Create(ctx, user, variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-abc"})
	_, _ = svc.Create(ctx, user, variables.CreateInput{Name: "REGION", Value: "eu", Type: variables.Generic})

	sec, _ := client.CoreV1().Secrets("langflow").Get(ctx, "uuid-"+user, metav1.GetOptions{})
	var keys []string
	for key, value := range sec.Data {
		keys = append(keys, key+"="+string(value))
	}
	slices.Sort(keys)
	fmt.Println(sec.Name, keys)
	v, _ := svc.Value(ctx, user, "OPENAI_API_KEY")
	fmt.Println(v)
	// Output:
	// uuid-0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11 [Credential_OPENAI_API_KEY=sk-abc REGION=eu]
	// sk-abc
}
