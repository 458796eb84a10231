package positions

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePurchasesCSV(t *testing.T) {
	in := "\ufeffPO,Item,Vendor,Date,Quantity,Unit_Price,Type,Effective,Expiry,Links\n" +
		"PO-1,CAD seats,Reseller,2026-01-10,30,400,license,,,SW-1:10;SW-2:20\n" +
		"PO-2,CAD maintenance,Reseller,2026-01-10,30,80.5,Maintenance,2026-01-10,2027-01-09,SW-1:10\n"
	ps, links, err := ParsePurchasesCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[1].Type != PurchaseMaintenance || ps[1].UnitPrice != 8050 || ps[1].Expiry.String() != "2027-01-09" ||
		len(links[0]) != 2 || links[0][1] != (Link{License: "SW-2", Quantity: 20}) {
		t.Fatalf("%+v %+v", ps, links)
	}
	for name, c := range map[string]struct{ csv, want string }{
		"negative quantity":  {"po,item,quantity,type\nA,x,5,license\nB,x,-5,license\n", "line 3"},
		"expiry first":       {"po,item,quantity,type,effective,expiry\nA,x,5,maintenance,2027-02-01,2027-01-01\n", "before the effective date"},
		"split over":         {"po,item,quantity,type,links\nA,x,5,license,SW-1:3;SW-2:3\n", "would take 6"},
		"broken quote":       {"po,item,quantity,type\nA,\"x,5,license\n", "nothing was imported"},
		"missing field":      {"po,item,quantity,type\nA,x,5\n", "nothing was imported"},
		"unknown column":     {"po,item,quantity,type,colour\n", "unknown column"},
		"missing column":     {"po,item,type\n", `"quantity" is missing`},
		"bad link":           {"po,item,quantity,type,links\nA,x,5,license,SW-1\n", "LICENSE:QUANTITY"},
		"bad date":           {"po,item,quantity,type,date\nA,x,5,license,01/02/2026\n", "column date"},
		"empty":              {"", "empty"},
		"header only":        {"po,item,quantity,type\n", "no purchase"},
		"quantity not whole": {"po,item,quantity,type\nA,x,1.5,license\n", "whole number"},
	} {
		if _, _, err := ParsePurchasesCSV(strings.NewReader(c.csv)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzParsePurchasesCSV(f *testing.F) {
	f.Add([]byte("po,item,quantity,type,links\nA,x,5,license,SW-1:5\n"))
	f.Add([]byte("po,item,quantity,type,effective,expiry\nA,x,5,maintenance,2027-01-01,2027-02-01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, links, err := ParsePurchasesCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever is accepted is valid, and its links fit.
		for i, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted an invalid purchase: %v", err)
			}
			if err := CheckSplit(p, links[i]); err != nil {
				t.Fatalf("accepted links over the quantity: %v", err)
			}
		}
	})
}
