"""Links between the pages of a list, keeping the other lists' pages of the same page (a run's held disables)."""

from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context: dict[str, Any], param: str, number: int) -> str:
    query = context["request"].GET.copy()
    query[param] = number
    return "?" + query.urlencode()
