-- A few KS indicators (ksi2242) for Linköping, Norrköping, the county and Sweden, each at its latest quarter
-- with a value for Linköping.
with

shown as (
    select *
    from marts.mart_key_figures
    where
        source_table = 'ksi2242'
        and region_code in ('0580', '0581', $county, '00')
        and list_contains($indicators, indicator_code)
        and value is not null
),

latest as (
    select indicator_code, max(period) as period
    from shown
    where region_code = '0580'
    group by indicator_code
)

select shown.indicator_code, shown.indicator_name, shown.unit, shown.period, shown.region_code, shown.value{{ prov }}
from shown
inner join latest on shown.indicator_code = latest.indicator_code and shown.period = latest.period
order by shown.indicator_code, shown.region_code
