package main

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
)

// Numbers on the command line are decimal digits: Go's flag package would
// also read 0x1C9C380, 0o17 and 1_000, which nobody means for an amount of
// money. A leading minus is read so that the range check can name it.
var (
	wholeNumber   = regexp.MustCompile(`^-?[0-9]+$`)
	decimalNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

type decimalInt[T int | int64] struct {
	p        *T
	accepted string
}

func (d decimalInt[T]) String() string {
	if d.p == nil {
		return ""
	}
	return strconv.FormatInt(int64(*d.p), 10)
}

func (d decimalInt[T]) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if !wholeNumber.MatchString(s) || err != nil || int64(T(n)) != n {
		return fmt.Errorf("accepted %s, in decimal digits", d.accepted)
	}
	*d.p = T(n)
	return nil
}

// intFlag defines an integer flag that takes decimal digits only; accepted
// says what is accepted, for the error message.
func intFlag[T int | int64](fs *flag.FlagSet, p *T, name string, value T, usage, accepted string) {
	*p = value
	fs.Var(decimalInt[T]{p: p, accepted: accepted}, name, usage)
}

type decimalFloat struct {
	p        *float64
	accepted string
}

func (d decimalFloat) String() string {
	if d.p == nil {
		return ""
	}
	return strconv.FormatFloat(*d.p, 'g', -1, 64)
}

func (d decimalFloat) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if !decimalNumber.MatchString(s) || err != nil {
		return fmt.Errorf("accepted %s, in decimal digits", d.accepted)
	}
	*d.p = f
	return nil
}

// floatFlag defines a number flag that takes decimal digits with an
// optional fraction: no NaN, Inf, exponent or hexadecimal form.
func floatFlag(fs *flag.FlagSet, p *float64, name string, value float64, usage, accepted string) {
	*p = value
	fs.Var(decimalFloat{p: p, accepted: accepted}, name, usage)
}
