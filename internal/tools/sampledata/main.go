// Command sampledata writes the demo's sample files (CSV, JSON, PNG images,
// text) into a directory, for s3seed to upload. Parquet files are written
// by the demo script with pyarrow when the extension's venv has it.
package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sampledata DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "sampledata:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	r := rand.New(rand.NewSource(42))
	files := map[string][]byte{}
	var csv strings.Builder
	csv.WriteString("sepal_length,sepal_width,petal_length,petal_width,species\n")
	species := []string{"setosa", "versicolor", "virginica"}
	var rows []map[string]any
	for i := 0; i < 150; i++ {
		s := species[i/50]
		v := []float64{4.5 + r.Float64()*3, 2 + r.Float64()*2, 1 + r.Float64()*5, 0.1 + r.Float64()*2.4}
		fmt.Fprintf(&csv, "%.1f,%.1f,%.1f,%.1f,%s\n", v[0], v[1], v[2], v[3], s)
		rows = append(rows, map[string]any{"sepal_length": v[0], "sepal_width": v[1], "petal_length": v[2], "petal_width": v[3], "species": s})
	}
	files["tables/iris.csv"] = []byte(csv.String())
	js, _ := json.MarshalIndent(rows[:20], "", "  ")
	files["tables/iris-sample.json"] = js
	files["README.txt"] = []byte("s3mounts demo bucket.\n\ntables/  CSV, JSON and Parquet tables\nimages/  PNG images\nmany/    a folder of 10,000 small objects\n")
	for i := 0; i < 6; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 128, 128))
		for y := 0; y < 128; y++ {
			for x := 0; x < 128; x++ {
				d := math.Hypot(float64(x-64), float64(y-64))
				img.Set(x, y, color.RGBA{uint8(40 * i), uint8(255 - 2*d), uint8(d * 2), 255})
			}
		}
		var b strings.Builder
		if err := png.Encode(&b, img); err != nil {
			return err
		}
		files[fmt.Sprintf("images/blob-%d.png", i)] = []byte(b.String())
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
