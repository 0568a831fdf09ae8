// Command crdcheck validates CustomResourceDefinitions and objects with the API server's own code
// (k8s.io/apiextensions-apiserver), without a cluster: CRD validation including the structural-schema
// rules, then pruning and schema validation of each object. Input on stdin: {"crds": [...], "objects": [...]}.
// Output on stdout: one JSON report {"crds": {name: [errors]}, "objects": [{name, errors, pruned}]}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type input struct {
	CRDs    []apiextensionsv1.CustomResourceDefinition `json:"crds"`
	Objects []map[string]interface{}                   `json:"objects"`
}

type objectReport struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Name       string   `json:"name"`
	Errors     []string `json:"errors"`
	Pruned     []string `json:"pruned"`
}

type report struct {
	CRDs    map[string][]string `json:"crds"`
	Objects []objectReport      `json:"objects"`
}

type versionSchema struct {
	validator  apiservervalidation.SchemaValidator
	structural *structuralschema.Structural
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crdcheck:", err)
		os.Exit(2)
	}
}

func run() error {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := apiextensions.AddToScheme(scheme); err != nil {
		return err
	}
	out := report{CRDs: map[string][]string{}, Objects: []objectReport{}}
	schemas := map[string]versionSchema{}
	for i := range in.CRDs {
		crd := &in.CRDs[i]
		apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
		var internal apiextensions.CustomResourceDefinition
		if err := scheme.Convert(crd, &internal, nil); err != nil {
			return fmt.Errorf("converting %s: %w", crd.Name, err)
		}
		problems := []string{}
		for _, e := range validation.ValidateCustomResourceDefinition(context.TODO(), &internal) {
			problems = append(problems, e.Error())
		}
		out.CRDs[crd.Name] = problems
		if len(problems) > 0 {
			continue
		}
		for _, version := range internal.Spec.Versions {
			props := internal.Spec.Validation
			if version.Schema != nil {
				props = version.Schema
			}
			structural, err := structuralschema.NewStructural(props.OpenAPIV3Schema)
			if err != nil {
				return fmt.Errorf("%s %s: %w", crd.Name, version.Name, err)
			}
			validator, _, err := apiservervalidation.NewSchemaValidator(props.OpenAPIV3Schema)
			if err != nil {
				return fmt.Errorf("%s %s: %w", crd.Name, version.Name, err)
			}
			key := internal.Spec.Group + "/" + version.Name + "/" + internal.Spec.Names.Kind
			schemas[key] = versionSchema{validator: validator, structural: structural}
		}
	}
	for _, obj := range in.Objects {
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		metadata, _ := obj["metadata"].(map[string]interface{})
		name, _ := metadata["name"].(string)
		rep := objectReport{APIVersion: apiVersion, Kind: kind, Name: name, Errors: []string{}, Pruned: []string{}}
		schema, ok := schemas[apiVersion+"/"+kind]
		if !ok {
			rep.Errors = append(rep.Errors, "no valid CRD serves "+apiVersion+" "+kind)
		} else {
			pruned := runtime.DeepCopyJSON(obj)
			rep.Pruned = append(rep.Pruned, pruning.PruneWithOptions(pruned, schema.structural, true,
				structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
			for _, e := range apiservervalidation.ValidateCustomResource(field.NewPath(""), pruned, schema.validator) {
				rep.Errors = append(rep.Errors, e.Error())
			}
		}
		out.Objects = append(out.Objects, rep)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(out)
}
