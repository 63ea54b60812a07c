-- Where both exist, the OD matrix margins (stayers, out-commuters; both sexes) equal the published commuting
-- totals. The offline OD rows are synthetic but were generated so that this holds for 2020-2021; a real OD
-- extract holds it by construction. (The balance mart shows the totals there: real first.)
with

balance as (

    select * from {{ ref('int_commuting__municipal_balance') }}

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
