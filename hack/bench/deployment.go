package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// deploymentEnv is the environment config/manager/manager.yaml gives the
// manager container, so that the bench measures the manager as it runs in
// a cluster: literal values, and the container's resources where the
// downward API names them (GOMEMLIMIT from limits.memory, in bytes).
func deploymentEnv(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no Deployment with a container named manager", path)
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				return containerEnv(c)
			}
		}
	}
}

func containerEnv(c corev1.Container) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil:
			ref := e.ValueFrom.ResourceFieldRef
			q := c.Resources.Limits[corev1.ResourceMemory]
			if ref.Resource != "limits.memory" || q.IsZero() {
				return nil, fmt.Errorf("env %s: the bench reads only a set limits.memory, not %s", e.Name, ref.Resource)
			}
			v := q.Value()
			if d := ref.Divisor.Value(); d > 0 {
				v /= d
			}
			env = append(env, e.Name+"="+strconv.FormatInt(v, 10))
		default:
			return nil, fmt.Errorf("env %s: the bench cannot give a value from anything but a literal or limits.memory", e.Name)
		}
	}
	return env, nil
}

// withEnv is env with name set to value, or env itself for an empty value.
func withEnv(env []string, name, value string) []string {
	if value == "" {
		return env
	}
	out := []string{name + "=" + value}
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}
