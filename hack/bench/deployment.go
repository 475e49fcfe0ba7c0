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
// a cluster: literal values, and its memory limit where the downward API
// names it.
func deploymentEnv(path string) ([]string, error) {
	_, env, err := managerContainer(path)
	return env, err
}

// managerContainer is the manager container of the Deployment at path, and
// its environment.
func managerContainer(path string) (corev1.Container, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return corev1.Container{}, nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return corev1.Container{}, nil, fmt.Errorf("%s: no Deployment with a container named manager", path)
		} else if err != nil {
			return corev1.Container{}, nil, fmt.Errorf("%s: %w", path, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				env, err := containerEnv(c)
				return c, env, err
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
			if ref.ContainerName != "" && ref.ContainerName != c.Name {
				return nil, fmt.Errorf("env %s: the bench reads the manager container's resources, not %s's", e.Name, ref.ContainerName)
			}
			if ref.Resource != "limits.memory" {
				return nil, fmt.Errorf("env %s: the bench reads only limits.memory, not %s", e.Name, ref.Resource)
			}
			q, ok := c.Resources.Limits[corev1.ResourceMemory]
			if !ok || q.IsZero() {
				return nil, fmt.Errorf("env %s: limits.memory is not set", e.Name)
			}
			v := q.Value()
			if d := ref.Divisor.Value(); d > 1 {
				v = (v + d - 1) / d // the kubelet rounds up
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
