{#- Fails where `expression` differs from `equals` by more than `tolerance` (absolute). -#}
{% test identity_holds(model, expression, equals, tolerance=0.01) %}
select *
from {{ model }}
where abs(({{ expression }}) - ({{ equals }})) > {{ tolerance }}
{% endtest %}
