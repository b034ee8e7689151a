"""``batch-attend template``: a leads workbook to start from, with headers the reader knows, the
phone column as Text (Excel keeps every digit) and drop-downs of the account's active operators
and departments written the way a run resolves them: filled in as meant, it runs as it is."""

from __future__ import annotations

from pathlib import Path

from batch_attend.atomic import replacing
from batch_attend.directory import Department, Directory, LookupProblem, Operator
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.session import fetch_lists
from batch_attend.settings import RunOptions

LISTS_SHEET = "Listas"
HEADERS = ("Nome", "Telefone", "Operadores", "Departamento", "Observação")
PHONE_COL, OPERATORS_COL = 1, 2  # then the department's
LAST_ROW = 1_048_575  # 0-based: the whole column below the header


class TemplateError(BatchAttendError):
    """The template cannot be written where asked (exit 2, nothing fetched or written)."""


def _choice(item: Operator | Department, lookup, whole: bool = True) -> str:
    """By name, as people pick it, when a run resolves the name back to ``item``; else by ID."""
    try:
        return item.name if whole and item.name and lookup(item.name) == item.id else item.id
    except LookupProblem:
        return item.id


def operator_choices(operators: list[Operator]) -> list[str]:
    """Active operators; by ID those of a name two share or the cell splitter would cut."""
    from batch_attend.leads import split_operators

    lookup = Directory(operators=operators).operator_id
    return [
        _choice(op, lookup, split_operators(op.name) == (op.name,)) for op in operators if op.active
    ]


GUIDE = """Como preencher esta planilha para o batch-attend

Preencha a aba Leads: um lead por linha, a partir da linha 2. Não mude os nomes das colunas; outras colunas que você acrescentar são mantidas no arquivo de resultados.

Nome: o nome do lead (opcional, só para você reconhecer a linha).
Telefone (obrigatório): o celular com DDD, em qualquer formato: (44) 99999-9999, 44 99999-9999, 44999999999 ou +55 44 99999-9999. Sem o DDD o número é recusado; o código do país (55) é acrescentado quando falta. Números de outros países: comece com + e o código do país. A coluna está formatada como Texto para o Excel não cortar dígitos.
Operadores: quem vai atender o lead, escolhido na lista (ou o ID do operador). Para vários operadores, separe por ponto e vírgula: Ana Souza; Bruno Lima. Vazio: o operador vem de --operator ou --pool na hora de rodar.
Departamento (opcional): escolha na lista (ou escreva o ID). Vazio: o atendimento começa sem departamento, ou com o de --department.
Observação: livre, não é enviada.

As listas trazem só os operadores e departamentos ativos da conta quando este modelo foi gerado (batch-attend operators e batch-attend departments mostram os de agora)."""
NO_OPERATORS = "A lista de operadores não foi incluída porque o modelo foi gerado sem o ticket; gere de novo com --ticket, ou escreva os IDs dos operadores."
ON_PAGE = "Como enviar: na página do batch-attend, em Nova execução, solte esta planilha. A prévia mostra o que será enviado antes de qualquer envio; depois clique em Iniciar."
ON_COMMAND_LINE = """Como rodar (com o token em PLUGCHAT_TOKEN; o ticket troca os nomes pelos IDs):
batch-attend check {name} --ticket SEU_TICKET
batch-attend {name} -o resultados.xlsx --ticket SEU_TICKET"""


def _write(
    path: Path, name: Path, operators: list[str] | None, departments: list[str], on_page: bool
) -> None:
    """Write the workbook at ``path``; its instructions name the file ``name``."""
    import xlsxwriter

    # Cells hold text as written: no formulas or links made of names that start like one.
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    bold = book.add_format({"bold": True})

    guide = book.add_worksheet("Instruções")
    guide.set_column(0, 0, 100, book.add_format({"text_wrap": True, "valign": "top"}))
    shown = f'"{name.name}"' if " " in name.name else name.name
    lines = GUIDE.splitlines() + ([] if operators is not None else [NO_OPERATORS])
    lines += ["", *(ON_PAGE if on_page else ON_COMMAND_LINE.format(name=shown)).splitlines()]
    guide.write_string(0, 0, lines[0], book.add_format({"bold": True, "font_size": 14}))
    guide.write_column(1, 0, lines[1:])

    leads = book.add_worksheet("Leads")
    leads.write_row(0, 0, HEADERS, bold)
    leads.freeze_panes(1, 0)
    text = book.add_format({"num_format": "@"})
    for c, width in enumerate((30, 20, 28, 28, 40)):
        leads.set_column(c, c, width, text if c == PHONE_COL else None)

    lists = book.add_worksheet(LISTS_SHEET)
    columns = [("Operadores", operators), ("Departamentos", departments)]
    for c, (header, values) in enumerate(columns):
        lists.write_string(0, c, header, bold)
        if values:  # a range, not an inline list: those stop at 255 characters
            lists.write_column(1, c, values)
            rule = {
                "validate": "list",
                "source": f"={LISTS_SHEET}!${'AB'[c]}$2:${'AB'[c]}${len(values) + 1}",
                # a warning, not a stop: IDs, and several operators with ';', are allowed
                "error_type": "warning",
                "error_title": "Valor fora da lista",
                "error_message": "Não está na lista da conta. Para vários operadores, separe por ponto e vírgula; IDs também são aceitos.",
            }
            leads.data_validation(1, OPERATORS_COL + c, LAST_ROW, OPERATORS_COL + c, rule)
    lists.hide()
    book.close()


def write_template(path: Path, options: RunOptions, env: Env, *, force=False, on_page=False) -> str:
    """Fetch the lists and write the template at ``path`` (never half of it); says what it wrote."""
    if path.suffix.lower() != ".xlsx":
        message = _("{path}: the template is an Excel workbook; give a name ending in .xlsx")
        raise TemplateError(message.format(path=path))
    if path.exists() and not force:
        message = _("{path} already exists; choose another name, or add --force to overwrite it")
        raise TemplateError(message.format(path=path))
    found = fetch_lists(options, env)
    operators = operator_choices(found.operators) if found.operators is not None else None
    lookup = Directory(departments=found.departments or []).department_id
    departments = [_choice(d, lookup) for d in found.departments or [] if d.active]
    if operators is None:
        message = _(
            "no ticket (--ticket or PLUGCHAT_TICKET): the operator list cannot be fetched, so the template has no operators drop-down"
        )
        env.log("batch-attend: " + message)
    try:
        with replacing(path) as temp:
            _write(temp, path, operators, departments, on_page)
    except OSError as exc:
        message = _("{path}: could not write the template: {reason}")
        raise TemplateError(message.format(path=path, reason=exc.strerror or exc)) from exc
    message = _("{path}: template written ({operators} operators, {departments} departments)")
    return message.format(path=path, operators=len(operators or []), departments=len(departments))
