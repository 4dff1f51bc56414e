package adapter

import (
	"reflect"
	"testing"

	"github.com/holdover/holdover/buffer"
)

// bufferStatsOf copies every field of the buffer's figures: each field set
// to a non-zero value comes out non-zero, and the two structs have the same
// fields.
func TestBufferStatsCopyEveryField(t *testing.T) {
	var in buffer.Stats
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]buffer.FamilyStats{{Name: "reg", PendingSessions: 1}}))
		default:
			t.Fatalf("field %s of kind %s: extend this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	out := reflect.ValueOf(bufferStatsOf(in))
	if out.NumField() != v.NumField() {
		t.Fatalf("BufferStats has %d fields, buffer.Stats %d", out.NumField(), v.NumField())
	}
	for i := range out.NumField() {
		name := out.Type().Field(i).Name
		if v.FieldByName(name).IsValid() && out.Field(i).IsZero() {
			t.Errorf("BufferStats.%s is not copied", name)
		}
		if !v.FieldByName(name).IsValid() {
			t.Errorf("BufferStats.%s has no counterpart in buffer.Stats", name)
		}
	}
}
