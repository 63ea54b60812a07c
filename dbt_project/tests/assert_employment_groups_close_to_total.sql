{{ config(severity='warn') }}
-- The SCB total A-U+US is not the exact sum of the 16 groups (disclosure control) but must be close:
-- warn when they differ by more than 0.5 % (and more than 5 persons).
with

employment as (

    select * from {{ ref('fct_employment_by_sector') }}
    where sex_code = 'total'

),

compared as (

    select
        region_code,
        basis,
        year,
        sum(case when is_all_industries then employed end) as published_total,
        sum(case when not is_all_industries then employed end) as sum_of_groups
    from employment
    group by region_code, basis, year

)

select *
from compared
where abs(published_total - sum_of_groups) > greatest(5, 0.005 * published_total)
