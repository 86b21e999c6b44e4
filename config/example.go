package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Example renders the settings of the struct ptr points to as a commented
// YAML file: above each setting its help and environment variable, then
// its current value (the defaults, for a fresh struct). section returns a
// setting's section title (nil: none); a title is written where it
// changes. Secrets are redacted as in Effective.
func Example(ptr any, section func(name string) string) ([]byte, error) {
	fields, err := Fields(ptr)
	if err != nil {
		return nil, err
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	title := ""
	for _, f := range fields {
		var header string
		if section != nil {
			if t := section(f.Name); t != title {
				title, header = t, "── "+t+" ──"
			}
		}
		parent := root
		for _, key := range f.Path[:len(f.Path)-1] {
			var k *yaml.Node
			parent, k = exampleChild(parent, key)
			if k != nil && header != "" {
				k.HeadComment, header = "\n"+header, ""
			}
		}
		help := f.Help
		if help == "" {
			help = f.Name
		}
		comment := strings.TrimSpace(help) + " (env " + f.Env() + ")"
		if header != "" {
			comment = "\n" + header + "\n\n" + comment
		}
		parent.Content = append(parent.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: f.Path[len(f.Path)-1], HeadComment: comment},
			valueNode(f))
	}
	body, err := yaml.Marshal(root)
	if err != nil {
		return nil, err
	}
	head := "# Heartwood configuration: every setting with its default.\n" +
		"# Flags and HEARTWOOD_* environment variables override this file.\n"
	return append([]byte(head), body...), nil
}

// exampleChild returns parent's mapping under key, creating it (and
// returning its new key node) if it does not exist.
func exampleChild(parent *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			return parent.Content[i+1], nil
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Value: key}
	child := &yaml.Node{Kind: yaml.MappingNode}
	parent.Content = append(parent.Content, k, child)
	return child, k
}
