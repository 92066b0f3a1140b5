"""The Streamlit dashboard: one module per page (its queries and drawing); the registry in chainrisk.dashboard.pages."""
