module github.com/dazaarvision/dazaar-vision

go 1.26.8
