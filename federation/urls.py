from django.urls import path

from federation import views

urlpatterns = [
    path("failover/", views.failover, name="failover"),
    path("failover/open/", views.failover_open, name="failover-open"),
    path("failover/close/", views.failover_close, name="failover-close"),
]
