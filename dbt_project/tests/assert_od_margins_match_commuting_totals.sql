-- Where both exist, the OD matrix margins (stayers, out-commuters; both sexes) equal the published commuting
-- totals. The OD rows are synthetic in development but were generated so that this holds for 2020-2021.
with

balance as (

    select * from {{ ref('mart_commuting_balance') }}

),

totals as (

    select * from {{ ref('mart_commuting_totals_series') }}

)

select
    balance.municipality_code,
    balance.year,
    balance.stayers as od_stayers,
    totals.stayers as published_stayers,
    balance.out_commuters as od_out_commuters,
    totals.out_commuters as published_out_commuters
from balance
inner join totals
    on
        balance.municipality_code = totals.municipality_code
        and balance.year = totals.year
where
    balance.stayers != totals.stayers
    or balance.out_commuters != totals.out_commuters
