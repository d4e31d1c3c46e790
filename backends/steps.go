package backends

// AllSteps returns pointers to the plan's steps in order, the exit
// handler last.
func (p *Plan) AllSteps() []*Step {
	out := make([]*Step, 0, len(p.Steps)+1)
	for i := range p.Steps {
		out = append(out, &p.Steps[i])
	}
	if p.Exit != nil {
		out = append(out, p.Exit)
	}
	return out
}
