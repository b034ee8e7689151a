"""Regenerate samples/leads.csv and samples/leads.xlsx (run from the repository root).

The rows show what ops spreadsheets really hold: Portuguese headers, mixed phone formats
(including the vendor's 12-digit form, without the ninth digit), a row with no operators, an
invalid phone, a phone that repeats in another format, and a phone typed as a number in the
workbook.
"""

import csv
from pathlib import Path

import xlsxwriter

HEADER = ["Nome", "Telefone", "Operadores", "Departamento", "Cidade", "Observação"]
ROWS = [
    ["Ana Paula Ribeiro", "(44) 99999-9999", "OP-ANA", "DEP-VENDAS", "Maringá", "Pediu orçamento"],
    ["João Carlos Pereira", "554488887777", "OP-BRUNO", "DEP-VENDAS", "Maringá", "Sem o nono dígito"],
    ["Mariana Costa", "+55 11 98765-4321", "OP-ANA; OP-BRUNO", "", "São Paulo", "Dois operadores"],
    ["Paulo Henrique Dias", "044 3025-1234", "OP-CARLA", "DEP-SUPORTE", "Maringá", "Telefone fixo"],
    ["Luciana Martins", "5521987654321", "OP-BRUNO", "DEP-VENDAS", "Rio de Janeiro", ""],
    ["Rafael Gonçalves", "(41) 99876-5432", "", "DEP-VENDAS", "Curitiba", "Sem operador"],
    ["Fernanda Alves", "12345", "OP-ANA", "DEP-VENDAS", "Londrina", "Telefone incompleto"],
    ["Ana Paula Ribeiro", "+55 44 99999-9999", "OP-ANA", "DEP-VENDAS", "Maringá", "Repetida"],
    ["Gustavo Rocha", "44 9988 7766", "OP-CARLA", "DEP-SUPORTE", "Cianorte", ""],
    ["Beatriz Nascimento", "\u00a0(43) 99123-4567\u00a0", "OP-ANA | OP-CARLA", "DEP-SUPORTE", "Londrina", "Espaço invisível"],
    ["Thiago Moreira", "+55 (62) 3212-4455", "OP-BRUNO", "", "Goiânia", "-- ligar à tarde"],
    ["Camila Ferreira", "5511912345678", "OP-ANA", "DEP-VENDAS", "São Paulo", "=HIPERLINK(\"http://exemplo\")"],
]  # fmt: skip
NUMBER_PHONE_ROW = 11  # in the workbook this phone is a number cell, as Excel stores typed numbers

here = Path(__file__).parent
with open(here / "leads.csv", "w", encoding="utf-8", newline="") as fh:
    csv.writer(fh, lineterminator="\n").writerows([HEADER, *ROWS])

book = xlsxwriter.Workbook(here / "leads.xlsx")
sheet = book.add_worksheet("Leads")
bold = book.add_format({"bold": True})
sheet.write_row(0, 0, HEADER, bold)
for r, row in enumerate(ROWS, start=1):
    for c, value in enumerate(row):
        if r - 1 == NUMBER_PHONE_ROW and c == 1:
            sheet.write_number(r, c, int(value))
        else:
            sheet.write_string(r, c, value)
sheet.set_column(0, 0, 22)
sheet.set_column(1, 1, 20)
sheet.set_column(2, 5, 18)
book.close()
