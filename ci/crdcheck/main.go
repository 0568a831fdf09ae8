// Command crdcheck validates CustomResourceDefinitions and objects with the API server's own code
// (k8s.io/apiextensions-apiserver), without a cluster: CRD validation including the structural-schema
// rules, then each object as kube-apiserver checks it on create: pruning, schema validation, the list-type
// set and map invariants, and the CRD's x-kubernetes-validations (CEL) rules, run by the API server's own
// validator within its per-call and per-request cost budgets (skipped, as there, when the schema already
// gave a blocking error). Input on stdin: {"crds": [...], "objects": [...]}. Output on stdout: one JSON
// report {"crds": {name: [errors]}, "objects": [{name, errors, paths, pruned}]}, where paths[i] is the
// field path of errors[i] ("" for an error about the whole object).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

type input struct {
	CRDs    []apiextensionsv1.CustomResourceDefinition `json:"crds"`
	Objects []json.RawMessage                          `json:"objects"`
}

type objectReport struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Name       string   `json:"name"`
	Errors     []string `json:"errors"`
	Paths      []string `json:"paths"`
	Pruned     []string `json:"pruned"`
}

type report struct {
	CRDs    map[string][]string `json:"crds"`
	Objects []objectReport      `json:"objects"`
}

type versionSchema struct {
	validator  apiservervalidation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator // nil when the schema has no x-kubernetes-validations
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
			// As customresource.NewStrategy: the rules compiled once per version, each call capped at PerCallLimit.
			celValidator := cel.NewValidator(structural, true, celconfig.PerCallLimit)
			schemas[key] = versionSchema{validator: validator, structural: structural, cel: celValidator}
		}
	}
	for i, raw := range in.Objects {
		// Decoded as the API server decodes a request body: whole numbers as int64 (CEL needs them so).
		var obj map[string]interface{}
		if err := utiljson.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		metadata, _ := obj["metadata"].(map[string]interface{})
		name, _ := metadata["name"].(string)
		rep := objectReport{APIVersion: apiVersion, Kind: kind, Name: name, Errors: []string{}, Paths: []string{},
			Pruned: []string{}}
		schema, ok := schemas[apiVersion+"/"+kind]
		if !ok {
			rep.Errors = append(rep.Errors, "no valid CRD serves "+apiVersion+" "+kind)
			rep.Paths = append(rep.Paths, "")
		} else {
			pruned := runtime.DeepCopyJSON(obj)
			rep.Pruned = append(rep.Pruned, pruning.PruneWithOptions(pruned, schema.structural, true,
				structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
			for _, e := range validateObject(pruned, schema) {
				rep.Errors = append(rep.Errors, e.Error())
				rep.Paths = append(rep.Paths, serverPath(e.Field))
			}
		}
		out.Objects = append(out.Objects, rep)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(out)
}

// validateObject is customResourceStrategy.Validate (k8s.io/apiextensions-apiserver/pkg/registry/customresource)
// for a create, less the object metadata checks: the schema, embedded resources, list sets and maps, then the
// CEL rules with the per-request budget, unless an earlier error blocks them as it does in the API server.
func validateObject(obj map[string]interface{}, schema versionSchema) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, apiservervalidation.ValidateCustomResource(field.NewPath(""), obj, schema.validator)...)
	errs = append(errs, schemaobjectmeta.Validate(nil, obj, schema.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, schema.structural, obj)...)
	if schema.cel != nil {
		if blocking, err := hasBlockingErr(errs); blocking {
			errs = append(errs, err)
		} else {
			celErrs, _ := schema.cel.Validate(context.TODO(), nil, schema.structural, obj, nil,
				celconfig.RuntimeCELCostBudget)
			errs = append(errs, celErrs...)
		}
	}
	return errs
}

// hasBlockingErr is the API server's (unexported there): errors after which it does not run the CEL rules.
func hasBlockingErr(errs field.ErrorList) (bool, *field.Error) {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany,
			field.ErrorTypeTypeInvalid:
			return true, field.Invalid(nil, nil, "some validation rules were not checked because the object was "+
				"invalid; correct the existing errors to complete validation")
		}
	}
	return false, nil
}

// serverPath is an error's field path as the API server reports it: the schema errors here hang below an
// empty root element ("[].spec.x", kept so in errors as before) where the server has none ("spec.x"), and
// an error about the whole object has no path ("<nil>") and is reported as "".
func serverPath(path string) string {
	if path == "<nil>" {
		return ""
	}
	return strings.TrimPrefix(strings.TrimPrefix(path, "[]"), ".")
}
