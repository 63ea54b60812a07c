-- Commuting balance of the county's municipalities, latest year; rows from real sources first.
select municipality_name as municipality, year, employed_residents, jobs, out_commuters, in_commuters,
       net_commuting, job_ratio, self_containment_supply, largest_outflow_name, largest_outflow_share,
       balance_basis, source_table{{ prov }}
from marts.mart_commuting_balance
where year = (select max(year) from marts.mart_commuting_balance) and starts_with(municipality_code, $county)
order by municipality_code
